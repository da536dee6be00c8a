"""The CLI's schedule and service operations: flags parsed into the requests they send."""
from __future__ import annotations

import pytest

from litepipeline.client import schedules
from litepipeline.client.cli import build_parser, main


def parse(*argv: str):  # noqa: ANN201
    return build_parser().parse_args(["127.0.0.1:1", *argv])


def test_schedule_create_with_cron_or_0_1_5_fields():
    args = parse("schedule", "create", "-n", "nightly", "-a", "A", "-c", "30 2 * * *", "--timezone", "Asia/Tokyo",
                 "--catchup", "all", "--overlap", "skip", "-e", "true", "-i", '{"k": 1}')
    assert schedules._schedule_body(args) == {
        "schedule_name": "nightly", "source": "application", "source_id": "A", "cron": "30 2 * * *",
        "timezone": "Asia/Tokyo", "catchup": "all", "overlap": "skip", "enable": True, "input_data": {"k": 1}}
    args = parse("schedule", "create", "-n", "w", "-w", "W", "-m", "0", "-H", "8", "-D", "0")
    body = schedules._schedule_body(args)
    assert body["source"] == "workflow" and body["source_id"] == "W" and body["enable"] is False
    assert (body["minute"], body["hour"], body["day_of_week"]) == (0, 8, 0) and "day_of_month" not in body


def test_schedule_update_sends_only_what_was_given():
    args = parse("schedule", "update", "-s", "S", "-H", "4")
    assert schedules._schedule_body(args) == {"hour": 4}


def test_service_update_without_signal_and_enable_disable():
    assert schedules._service_body(parse("service", "update", "-s", "S", "-i", '{"a": 2}')) == {"input_data": {"a": 2}}
    body = schedules._service_body(parse("service", "create", "-n", "n", "-a", "A", "-g", "-9",
                                         "--restart", "on-failure"))
    assert body == {"name": "n", "app_id": "A", "input_data": {}, "description": "", "signal": -9,
                    "enable": False, "restart": "on-failure"}
    assert parse("service", "disable", "-s", "S").service_id == "S"


@pytest.mark.parametrize("argv", [
    ("schedule", "create", "-n", "x", "-a", "A", "-c", "* * * * *", "-m", "3"),
    ("schedule", "create", "-n", "x", "-a", "A", "-i", "[1]"),
    ("service", "create", "-n", "x", "-a", "A", "-i", "{nope"),
])
def test_bad_flags_are_usage_errors_and_nothing_is_sent(argv, capsys):
    assert main(["127.0.0.1:1", *argv]) == 2   # port 1: a request sent would fail with exit 1
    assert "error:" in capsys.readouterr().err


def test_schedule_create_needs_an_application_or_a_workflow(capsys):
    assert main(["127.0.0.1:1", "schedule", "create", "-n", "x", "-c", "* * * * *"]) == 2
    assert main(["127.0.0.1:1", "schedule", "create", "-n", "x", "-a", "A", "-w", "W"]) == 2
