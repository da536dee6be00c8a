"""common/messages.py: each message's wire shape, its parse-and-validate, and growing one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pytest

from litepipeline.common import protocol
from litepipeline.common.errors import InvalidParameters
from litepipeline.common.messages import (Answer, Heartbeat, HeldAttempt, Register, RegisterAnswer, Report,
                                          RunAction, StopAction, json_object, optional, parse_signal, Bad,
                                          signal_value, wire)

SHA1 = "c" * 40
RUN = {"name": "first", "main": "python first.py", "task_id": "t1", "app_id": "app1", "app_sha1": SHA1,
       "attempt_id": "att-1", "attempt": 2, "env": "venvs/venv", "condition": ["x"], "input_data": {"k": 1},
       "timeout": 3.5}
REPORT = {"name": "first", "task_id": "t1", "attempt_id": "att-1", "stage": "finished", "node_id": "n1",
          "attempt": 2, "status": "success", "start_at": "2026-01-01 00:00:00.000000",
          "end_at": "2026-01-01 00:00:01.000000", "returncode": 0, "result": {"data": {}}, "message": ""}


@pytest.mark.parametrize("cls, wire_dict", [(RunAction, RUN), (Report, REPORT)])
def test_round_trip_keeps_the_wire_shape(cls, wire_dict):
    message = cls.parse(wire_dict)
    assert message.to_dict() == wire_dict
    assert protocol.decode(*message.to_frame().split(protocol.JSON_END, 1)) == {"command": cls.COMMAND,
                                                                                 "data": wire_dict}


def test_run_defaults_and_normalisation():
    message = RunAction.parse({**RUN, "app_sha1": "AB" * 20, "env": "", "attempt": None, "input_data": None,
                               "condition": None, "timeout": None})
    assert message.app_sha1 == "ab" * 20 and message.env is None and message.attempt == 1
    assert message.input_data == {} and message.condition == [] and message.timeout is None


@pytest.mark.parametrize("cls, data, text", [
    (RunAction, {k: v for k, v in RUN.items() if k != "main"}, "missing field 'main'"),
    (RunAction, {**RUN, "input_data": [1]}, "field 'input_data' must be an object, got list"),
    (RunAction, {**RUN, "name": 5}, "field 'name' must be str, got int"),
    (RunAction, {**RUN, "main": " "}, "field 'main' must not be empty"),
    (RunAction, {**RUN, "timeout": 0}, "field 'timeout' must be a positive number or null, got 0"),
    (Report, {**REPORT, "stage": "done"}, "report field 'stage' must be 'running' or 'finished'"),
    (Report, {**REPORT, "task_id": ""}, "report field 'task_id' must be a non-empty string"),
    (Report, {**REPORT, "result": [1]}, "report field 'result' must be a JSON object"),
    (Report, {"stage": "finished"}, "report field 'task_id' must be a non-empty string"),
    (Register, {"http_port": 1, "action_slots": 0}, "action_slots must be an integer between 1 and 10000"),
    (Register, {"http_port": 1, "action_slots": 1, "node_id": "nope"}, "node_id must be a uuid, got 'nope'"),
    (Register, {"http_port": 1, "action_slots": 1, "running": {}}, "running must be a list"),
    (Register, {"http_port": 1, "action_slots": 1, "http_host": "a b"}, "http_host must be a host name"),
    (Register, {"http_port": 1, "action_slots": 1, "heartbeat_timeout": 0}, "heartbeat_timeout must be a "
                                                                             "positive number"),
    (Register, {"http_port": 1, "action_slots": 1, "labels": ["gpu"]}, "labels must be a map of name: value"),
    (Register, {"http_port": 1, "action_slots": 1, "labels": {"gpu": "a" * 64}}, "labels.gpu 'aaaa"),
    (Register, {"http_port": 1, "action_slots": 1, "labels": {str(i): "x" for i in range(33)}},
     "labels has 33 entries, more than 32"),
    (Register, {"http_port": 1, "action_slots": 1, "platform": "x" * 65}, "platform must be a string of at most 64"),
    (StopAction, {"task_id": "t", "name": "a", "signal": 3}, "field 'signal' must be -9 or -15, got 3"),
    (StopAction, {"task_id": "t", "name": "a", "signal": "kill"}, "field 'signal' must be -9 or -15, got 'kill'"),
    (StopAction, {"task_id": "t", "name": "a", "attempt_id": 5}, "field 'attempt_id' must be a string"),
])
def test_a_bad_field_is_named(cls, data, text):
    with pytest.raises(InvalidParameters) as info:
        cls.parse(data)
    assert text in info.value.message


def test_register_reads_the_node_id_canonically_and_leaves_bad_held_entries_out():
    message = Register.parse({"http_port": 1, "action_slots": 2, "node_id": "{" + "A" * 32 + "}",
                              "running": [{"task_id": "t", "name": "a", "attempt_id": "x", "state": "running"},
                                          "junk", {"attempt_id": 5}], "draining": True, "free_slots": 0})
    assert message.node_id == "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
    assert message.running == [HeldAttempt("t", "a", "x", "running")]
    assert message.draining and message.free_slots == 0
    assert Heartbeat.parse({"running": "not a list", "draining": "yes"}) == Heartbeat([], None, False)


def test_register_round_trips_labels_and_platform():
    message = Register(http_port=1, action_slots=2, labels={"gpu": "a100", "zone": "b"}, platform="x86_64")
    back = Register.parse(message.to_dict())
    assert back.labels == {"gpu": "a100", "zone": "b"} and back.platform == "x86_64"
    assert back == message
    older = Register.parse({"http_port": 1, "action_slots": 2})   # a node without them
    assert older.labels == {} and older.platform is None


def test_answers():
    assert Answer.parse({"attempt_id": "a", "code": True, "result": "ok"}).code == 500   # a bool is no code
    assert not Answer("a", 200, "NotOk", "").ok and Answer("a", 204, "ok", "").ok
    assert Answer(None, 599, None, "refused").describe() == "refused"
    success = RegisterAnswer(protocol.SUCCESS, "", "n1", [HeldAttempt("t", "a", "x")], ["RUN"])
    assert protocol.decode(*success.frame(protocol.REGISTER).split(protocol.JSON_END, 1))["data"] == {
        "status": "SUCCESS", "message": "SUCCESS", "node_id": "n1",
        "stop": [{"task_id": "t", "name": "a", "attempt_id": "x"}], "features": ["RUN"]}
    refused = RegisterAnswer(protocol.FAILURE, "wrong token").frame(protocol.REGISTER, node_id=None)
    assert protocol.decode(*refused.split(protocol.JSON_END, 1))["data"] == {
        "status": "FAILURE", "message": "wrong token", "node_id": None}


@pytest.mark.parametrize("value, expected", [(-9, -9), (9, -9), ("-15", -15), ("15", -15), (None, None),
                                             (True, None), ("x", None), (0, None), ("kill", None)])
def test_one_signal_parser(value, expected):
    if expected is None:
        with pytest.raises(Bad):
            parse_signal(value)
        with pytest.raises(InvalidParameters):
            signal_value(value)
    else:
        assert parse_signal(value) == expected


def test_the_cli_also_takes_signal_words():
    assert parse_signal("KILL", words=True) == -9 and parse_signal(" sigterm", words=True) == -15


def test_an_optional_field_is_one_line():
    @dataclass
    class RunWithLabels(RunAction):
        labels: Optional[dict] = wire(optional(json_object), omit_none=True)

    assert RunWithLabels.parse(RUN).to_dict() == RUN                       # older peers see what they know
    assert RunWithLabels.parse({**RUN, "labels": {"gpu": "a100"}}).labels == {"gpu": "a100"}
    with pytest.raises(InvalidParameters, match="field 'labels' must be a JSON object"):
        RunWithLabels.parse({**RUN, "labels": 1})
