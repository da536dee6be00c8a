"""The systemd units in deploy/: settings that the node's drain and group kill rely on,
and ``systemd-analyze verify`` where that command exists."""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys

import pytest

from litepipeline.common.config import NodeConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = os.path.join(ROOT, "deploy", "systemd")
INSTALLED_BIN = "/opt/litepipeline/bin"


def _unit(name: str) -> configparser.ConfigParser:
    # strict=False: a unit may repeat a key (SystemCallFilter=), which systemd merges
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(os.path.join(UNITS, name), encoding="utf-8")
    return parser


@pytest.mark.parametrize("name, command", [("litemanager.service", "litemanager"), ("litenode.service", "litenode")])
def test_unit_runs_its_daemon_hardened(name, command):
    service = _unit(name)["Service"]
    assert service["ExecStart"].startswith(f"{INSTALLED_BIN}/{command} -c /etc/litepipeline/")
    assert service["User"] == "litepipeline" and service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"      # a configuration error: restarting won't help
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ProtectKernelModules": "yes", "ProtectControlGroups": "yes", "CapabilityBoundingSet": "",
                       "KillMode": "mixed"}.items():
        assert service[key] == value, key


def test_node_unit_lets_the_node_drain_and_kill_its_groups():
    service = _unit("litenode.service")["Service"]
    # SIGTERM to the node only; systemd's SIGKILL to the whole cgroup only after the drain
    assert service["KillMode"] == "mixed"
    assert "Delegate" not in service                          # process groups, not cgroups
    drain = NodeConfig.__dataclass_fields__["drain_timeout"].default
    assert int(service["TimeoutStopSec"]) >= drain + 15
    assert "MemoryDenyWriteExecute" not in service and "SystemCallFilter" not in service


def test_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here: the units' syntax was not verified")
    bin_dir = os.path.dirname(sys.executable)   # where this install's litemanager/litenode are
    paths = []
    for name in sorted(os.listdir(UNITS)):
        with open(os.path.join(UNITS, name), encoding="utf-8") as fp:
            text = fp.read().replace(INSTALLED_BIN, bin_dir)
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    assert len(paths) == 2
    result = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True, timeout=120)
    # verify exits 0 on a key it ignores, but says so: any line about our units is a failure
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if "litemanager" in line or "litenode" in line]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr
