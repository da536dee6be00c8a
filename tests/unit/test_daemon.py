"""Start-up messages of the daemons that say what to change."""
from __future__ import annotations

import errno

from litepipeline.common.daemon import ListenError, listen_failure


def test_listen_failures_name_the_address_and_the_key():
    in_use = listen_failure(OSError(errno.EADDRINUSE, "Address already in use"), "0.0.0.0", 8000,
                            "http_host", "http_port")
    assert in_use.startswith("cannot listen on 0.0.0.0:8000: address already in use")
    assert in_use.endswith("stop it or change 'http_port' in the configuration")
    assert listen_failure(OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), "10.9.9.9", 6001,
                          "tcp_host", "tcp_port") == ("cannot listen on 10.9.9.9:6001: 10.9.9.9 is not an address "
                                                      "of this machine; change 'tcp_host' in the configuration")
    assert "permission denied (ports below 1024 need privileges); change 'http_port'" in listen_failure(
        OSError(errno.EACCES, "Permission denied"), "127.0.0.1", 80, "http_host", "http_port")
    assert listen_failure(OSError(errno.EINVAL, "Invalid argument"), "h", 1, "http_host", "http_port") == (
        "cannot listen on h:1 ('http_host', 'http_port' in the configuration): Invalid argument")


def test_listen_error_prints_as_its_line():
    exc = ListenError(errno.EADDRINUSE, "cannot listen on 127.0.0.1:1: address already in use")
    assert str(exc) == "cannot listen on 127.0.0.1:1: address already in use"
    assert isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
