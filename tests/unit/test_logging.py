"""``log_format``: text lines by default, one JSON object per line with ``json``."""
from __future__ import annotations

import json
import logging

import pytest

from litepipeline.common.config import config_from_dict
from litepipeline.common.daemon import setup_logging
from litepipeline.common.errors import ConfigError


@pytest.fixture
def root_logger():
    """Give the test the root logger, and put its handlers and level back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _log_lines(role, tmp_path, root_logger, capsys, **keys):
    config, _ = config_from_dict(role, {"log_path": str(tmp_path), **keys})
    setup_logging(role, config)
    log = logging.getLogger("litepipeline.test")
    log.info("task %s finished: %s", "t1", "multi\nline ünïcode")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    for handler in root_logger.handlers:
        handler.flush()
    return (tmp_path / f"{role}.log").read_text(encoding="utf-8").splitlines(), capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("role", ["manager", "node"])
def test_json_logs_are_one_object_per_line(role, tmp_path, root_logger, capsys):
    file_lines, console_lines = _log_lines(role, tmp_path, root_logger, capsys, log_format="json")
    assert len(file_lines) == 2 and console_lines[-2:] == file_lines
    first, second = (json.loads(line) for line in file_lines)
    assert first["message"] == "task t1 finished: multi\nline ünïcode"
    assert (first["level"], first["logger"]) == ("INFO", "litepipeline.test")
    assert first["timestamp"].endswith("+00:00") and "T" in first["timestamp"]
    assert second["level"] == "ERROR" and second["exc_info"].endswith("ValueError: boom")


def test_text_logs_by_default(tmp_path, root_logger, capsys):
    file_lines, _ = _log_lines("manager", tmp_path, root_logger, capsys)
    assert " INFO litepipeline.test: task t1 finished: multi" in file_lines[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(file_lines[0])


def test_log_format_is_checked():
    with pytest.raises(ConfigError, match="configuration key 'log_format' must be one of text, json, got 'xml'"):
        config_from_dict("node", {"log_format": "xml"})
