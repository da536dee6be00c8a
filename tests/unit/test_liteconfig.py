"""``liteconfig`` writes a loadable configuration.yml and refuses to clobber one."""
from __future__ import annotations

import os
import stat

import pytest
import yaml

from litepipeline.client.liteconfig import main
from litepipeline.common.config import load_config


@pytest.mark.parametrize("role", ["manager", "node"])
def test_writes_loadable_config_with_absolute_paths(tmp_path, capsys, role):
    assert main(["-s", role, "-o", str(tmp_path)]) == 0
    path = tmp_path / "configuration.yml"
    raw = yaml.safe_load(path.read_text())
    assert raw["log_path"] == str(tmp_path / "logs")
    assert raw["data_path"] == str(tmp_path / "data")
    config, warnings = load_config(role, str(path))
    assert warnings == []
    assert config.log_path == str(tmp_path / "logs")
    assert config.auth_token is None
    assert config.http_port == (8000 if role == "manager" else 8001)
    # Every line is commented, and the service directories are left for the service.
    assert all(" # " in line for line in path.read_text().splitlines())
    assert not (tmp_path / "logs").exists() and not (tmp_path / "data").exists()
    assert str(path) in capsys.readouterr().out


def test_relative_output_dir_becomes_absolute(tmp_path, monkeypatch):
    (tmp_path / "svc").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["--service", "node", "--output", "svc"]) == 0
    raw = yaml.safe_load((tmp_path / "svc" / "configuration.yml").read_text())
    assert raw["data_path"] == os.path.join(str(tmp_path), "svc", "data")
    assert raw["log_path"] == os.path.join(str(tmp_path), "svc", "logs")


def test_dot_output_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["-s", "manager", "-o", "./"]) == 0
    assert yaml.safe_load((tmp_path / "configuration.yml").read_text())["log_path"] == str(tmp_path / "logs")


def test_missing_output_dir_is_one_line_error(tmp_path, capsys):
    missing = str(tmp_path / "nope")
    assert main(["-s", "manager", "-o", missing]) == 1
    err = capsys.readouterr().err
    assert err == f"liteconfig: error: output directory does not exist: {missing}\n"


def test_output_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["-s", "manager", "-o", str(target)]) == 1
    assert "output directory does not exist" in capsys.readouterr().err
    assert target.read_text() == "x"


def test_unknown_service_is_usage_error(tmp_path, capsys):
    assert main(["-s", "worker", "-o", str(tmp_path)]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "configuration.yml").exists()


def test_existing_file_needs_force(tmp_path, capsys):
    path = tmp_path / "configuration.yml"
    path.write_text("http_port: 9999\n")
    assert main(["-s", "manager", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--force" in err and err.count("\n") == 1
    assert path.read_text() == "http_port: 9999\n"
    assert main(["-s", "manager", "-o", str(tmp_path), "--force"]) == 0
    assert yaml.safe_load(path.read_text())["http_port"] == 8000
    assert [p.name for p in tmp_path.iterdir()] == ["configuration.yml"]  # no temp file left


def test_token_gen_writes_and_prints_token(tmp_path, capsys):
    assert main(["-s", "manager", "-o", str(tmp_path), "--token-gen"]) == 0
    path = tmp_path / "configuration.yml"
    config, _ = load_config("manager", str(path))
    assert config.auth_token and len(config.auth_token) >= 40
    assert config.auth_token in capsys.readouterr().out
    # The file now holds a secret: only its owner may read it.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert main(["-s", "manager", "-o", str(tmp_path), "--token-gen", "--force"]) == 0
    assert load_config("manager", str(path))[0].auth_token != config.auth_token


def test_version(capsys):
    assert main(["-v"]) == 0
    assert capsys.readouterr().out.startswith("liteconfig ")


def test_node_labels(tmp_path, capsys):
    assert main(["-s", "node", "-o", str(tmp_path), "--label", "gpu=a100", "-l", "zone=b"]) == 0
    config, warnings = load_config("node", str(tmp_path / "configuration.yml"))
    assert config.labels == {"gpu": "a100", "zone": "b"} and warnings == []
    capsys.readouterr()
    assert main(["-s", "node", "-o", str(tmp_path), "--force", "--label", "gpu"]) == 1
    assert capsys.readouterr().err == "liteconfig: error: --label 'gpu' must be NAME=VALUE\n"
    assert main(["-s", "node", "-o", str(tmp_path), "--force", "--label", "gpu=a 100"]) == 1
    assert capsys.readouterr().err == ("liteconfig: error: label.gpu 'a 100' must be 1-63 letters, digits, "
                                       "'.', '_' or '-', starting with a letter or digit\n")
    assert main(["-s", "manager", "-o", str(tmp_path), "--force", "--label", "gpu=a100"]) == 1
    assert "--label is a node key" in capsys.readouterr().err
    assert load_config("node", str(tmp_path / "configuration.yml"))[0].labels == {"gpu": "a100", "zone": "b"}
