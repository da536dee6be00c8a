"""Env tarballs: the rules the manager checks at upload and the node applies when extracting."""
from __future__ import annotations

import io
import os
import tarfile

import pytest

from litepipeline.common.envtar import check_env_stream, safe_extract_env
from litepipeline.common.errors import InvalidApplication
from tests.fixtures import env_tarball, hostile_env_tarball, member

OK = [(member("bin/", tarfile.DIRTYPE), None), (member("bin/activate"), b"true\n"),
      (member("bin/python", tarfile.SYMTYPE, linkname="/usr/bin/python3"), None),
      (member("lib/a.py"), b"x"), (member("lib/b.py", tarfile.LNKTYPE, linkname="lib/a.py"), None),
      (member("pyvenv.cfg"), b"a"), (member("pyvenv.cfg"), b"b")]   # venv-pack writes it twice


def _check(data: bytes, limit: int = 10 ** 6) -> str:
    with pytest.raises(InvalidApplication) as info:
        check_env_stream(io.BytesIO(data), limit)
    return info.value.message


@pytest.mark.parametrize("extra, message", [
    ([(member("../x"), b"x")], "member '../x' escapes the env directory"),
    ([(member("/abs"), b"x")], "member '/abs' escapes the env directory"),
    ([(member("fifo", tarfile.FIFOTYPE), None)], "member 'fifo' has an unsupported type"),
    ([(member("bin/python/x"), b"x")], "member 'bin/python/x' lies below a symlink"),
    ([(member("h", tarfile.LNKTYPE, linkname="bin/python"), None)],
     "hard link 'h' does not point to an earlier regular file of the env"),
    ([(member("h", tarfile.LNKTYPE, linkname="later"), None), (member("later"), b"x")],
     "hard link 'h' does not point to an earlier regular file of the env"),
    ([(member("lib/b.py"), b"x")], "member 'lib/b.py' replaces an earlier link or directory"),
    ([(member("bin/python"), b"x")], "member 'bin/python' replaces an earlier link or directory"),
    ([(member("lib", tarfile.SYMTYPE, linkname="/tmp"), None)], "symlink 'lib' replaces a directory"),
    ([(member("big"), b"x" * 2000)], "unpacks to more than 1000 bytes"),
])
def test_rules(extra, message):
    assert _check(env_tarball(OK + extra), 1000) == message


def test_the_issues_tarball_is_refused_and_nothing_is_written(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("original\n")
    data = hostile_env_tarball(str(outside))
    assert _check(data) == "hard link 'h' does not point to an earlier regular file of the env"
    path = tmp_path / "env.tar.gz"
    path.write_bytes(data)
    with pytest.raises(InvalidApplication):
        safe_extract_env(str(path), str(tmp_path / "env"), 10 ** 6)
    assert not (tmp_path / "env").exists()
    assert (outside / "victim").read_text() == "original\n"


def test_valid_env_extracts(tmp_path):
    check_env_stream(io.BytesIO(env_tarball(OK)), 10 ** 6)
    path = tmp_path / "env.tar.gz"
    path.write_bytes(env_tarball(OK))
    safe_extract_env(str(path), str(tmp_path / "env"), 10 ** 6)
    assert os.readlink(tmp_path / "env" / "bin" / "python") == "/usr/bin/python3"
    assert (tmp_path / "env" / "pyvenv.cfg").read_text() == "b"
    assert os.stat(tmp_path / "env" / "lib" / "b.py").st_ino == os.stat(tmp_path / "env" / "lib" / "a.py").st_ino


def test_not_gzip():
    assert _check(b"plain").startswith("not a valid gzip tar archive: ")
