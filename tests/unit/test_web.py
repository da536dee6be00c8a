"""Shared handler helpers (common/web.py)."""
from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from litepipeline.common.web import attachment


@pytest.mark.parametrize("name", ["t-first.tar.gz", "t-\U000de637\u00da.tar.gz", 't-a"b\\c.tar.gz',
                                  "t-\r\nSet-Cookie: x.tar.gz", "t-\udb39.tar.gz"])
def test_attachment_is_a_safe_header_whatever_the_name(name):
    value = attachment(name)
    # what tornado lets through a header: printable ISO-8859-1 (a name from a query broke it: a 500)
    assert re.fullmatch(r"[\x20-\x7e]*", value), value
    plain = re.search(r'filename="([^"]*)"', value).group(1)
    assert len(plain) == len(name)
    exact = value.split("filename*=UTF-8''", 1)[1]
    if "\udb39" not in name:
        assert unquote(exact) == name
    assert attachment("t-first.tar.gz").startswith('attachment; filename="t-first.tar.gz"')
