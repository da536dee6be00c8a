"""The tail of an action's output quoted in its failure message."""
from __future__ import annotations

from litepipeline.node.outputtail import TAIL_BYTES, read_tail, tail_text, with_tail


def test_last_lines_without_blank_ones():
    data = b"one\ntwo\n\nthree\r\nfour\rfive\nsix\n\n"
    assert tail_text(data) == "two\nthree\nfour\nfive\nsix"
    assert tail_text(data, max_lines=2) == "five\nsix"
    assert tail_text(b"") == "" and tail_text(b"\n \n") == ""


def test_invalid_utf8_is_replaced():
    assert tail_text(b"bad \xff byte\n") == "bad \ufffd byte"


def test_read_tail_is_bounded_in_bytes(tmp_path):
    path = tmp_path / "stdout.data"
    path.write_bytes(b"x" * 5000 + b"\nTraceback (most recent call last):\nValueError: boom\n")
    tail = read_tail(str(path))
    assert tail.endswith("Traceback (most recent call last):\nValueError: boom")
    assert tail.startswith("…x")                     # the cut first line is marked
    assert len(tail.encode()) <= TAIL_BYTES + len("…".encode())
    long_line = tmp_path / "one_line"
    long_line.write_bytes(b"y" * 10_000)
    assert read_tail(str(long_line)) == "…" + "y" * TAIL_BYTES


def test_read_tail_of_a_missing_file(tmp_path):
    assert read_tail(str(tmp_path / "nope")) == ""


def test_with_tail():
    assert with_tail("action exited with code 3", "") == "action exited with code 3"
    assert with_tail("action exited with code 3", "boom") == "action exited with code 3; last output:\nboom"
