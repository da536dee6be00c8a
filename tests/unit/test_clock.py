"""API time strings: always microseconds, parsed back exactly, anything else refused."""
from __future__ import annotations

import datetime as dt

import pytest

from litepipeline.common import clock


@pytest.mark.parametrize("value", [dt.datetime(2020, 1, 16, 22, 47, 39, 910642), dt.datetime(2020, 1, 16, 22, 47, 39),
                                   dt.datetime(1999, 12, 31, 0, 0, 0, 1)])
def test_fmt_and_parse_round_trip(value):
    text = clock.fmt(value)
    assert text == value.strftime(clock.FORMAT) and len(text) == 26
    assert clock.parse(text) == value


@pytest.mark.parametrize("text", ["", None, 5, "bad", "2020-01-16 22:47:39", "2020-01-16T22:47:39.910642",
                                  "2020-13-16 22:47:39.910642", "2020-01-16 22:47:39.9106+0",
                                  "2020-01-16 22:47:39.91064Z"])
def test_parse_refuses_other_shapes(text):
    assert clock.parse(text) is None


def test_fmt_none():
    assert clock.fmt(None) is None
