"""The table format must match the original README byte for byte."""
from __future__ import annotations

import pytest

from litepipeline.client.table import cell_text, format_table, rows_from

APP_ID = "daf41830-c2f9-4b68-8890-7dc286a7ac12"
TASK_ID = "0d50caed-760b-40a5-bcc7-dcdb46960675"
TASK_COLUMNS = ["task_id", "application_id", "task_name", "create_at", "start_at", "end_at", "stage",
                "status"]


def test_seed_app_create():
    expected = (
        "# | app_id                               | result | message\n"
        "1 | daf41830-c2f9-4b68-8890-7dc286a7ac12 | ok     |"
    )
    assert format_table(["app_id", "result", "message"], [[APP_ID, "ok", ""]], None) == expected


def test_seed_task_create():
    expected = (
        "# | task_id                              | result | message\n"
        "1 | 0d50caed-760b-40a5-bcc7-dcdb46960675 | ok     |"
    )
    assert format_table(["task_id", "result", "message"], [[TASK_ID, "ok", ""]], None) == expected


def test_seed_app_list_first_rows():
    # The README shows the top of a longer list: the '#' column is two wide (ten or more
    # rows) and the name column is padded for a 36-character name further down.
    expected = (
        " # | application_id                       | name                                 "
        "| create_at                  | update_at\n"
        " 1 | daf41830-c2f9-4b68-8890-7dc286a7ac12 | multiple actions demo                "
        "| 2020-01-16 22:44:10.886778 | 2020-01-16 22:44:10.886778"
    )
    first = [APP_ID, "multiple actions demo", "2020-01-16 22:44:10.886778", "2020-01-16 22:44:10.886778"]
    others = [[f"{i:08d}-c2f9-4b68-8890-7dc286a7ac12", "x" * 36 if i == 5 else f"app {i}",
               "2020-01-17 10:00:00.000000", "2020-01-17 10:00:00.000000"] for i in range(2, 12)]
    table = format_table(["application_id", "name", "create_at", "update_at"], [first, *others], None)
    lines = table.split("\n")
    assert "\n".join(lines[:2]) == expected
    assert len(lines) == 12
    assert lines[-1].startswith("11 | ")


def test_seed_task_info_running():
    expected = (
        "# | task_id                              | application_id                       | task_name "
        "| create_at                  | start_at                   | end_at | stage   | status\n"
        "1 | 0d50caed-760b-40a5-bcc7-dcdb46960675 | daf41830-c2f9-4b68-8890-7dc286a7ac12 | task demo "
        "| 2020-01-16 22:47:39.910642 | 2020-01-16 22:47:40.792083 | None   | running | None"
    )
    row = [TASK_ID, APP_ID, "task demo", "2020-01-16 22:47:39.910642", "2020-01-16 22:47:40.792083",
           None, "running", None]
    assert format_table(TASK_COLUMNS, [row], None) == expected


def test_seed_task_info_finished():
    expected = (
        "# | task_id                              | application_id                       | task_name "
        "| create_at                  | start_at                   | end_at                     "
        "| stage    | status\n"
        "1 | 0d50caed-760b-40a5-bcc7-dcdb46960675 | daf41830-c2f9-4b68-8890-7dc286a7ac12 | task demo "
        "| 2020-01-16 22:47:39.910642 | 2020-01-16 22:47:40.792083 | 2020-01-16 22:49:50.104178 "
        "| finished | success"
    )
    row = [TASK_ID, APP_ID, "task demo", "2020-01-16 22:47:39.910642", "2020-01-16 22:47:40.792083",
           "2020-01-16 22:49:50.104178", "finished", "success"]
    assert format_table(TASK_COLUMNS, [row], None) == expected


def test_rows_from_dicts_in_column_order_and_missing_keys_empty():
    items = [{"task_id": TASK_ID, "status": None, "extra": 1}]
    assert rows_from(items, ["status", "task_id", "stage"]) == [[None, TASK_ID, ""]]


def test_number_column_is_right_aligned_to_its_widest_cell():
    table = format_table(["v"], [[i] for i in range(12)], None)
    lines = table.split("\n")
    assert lines[0] == " # | v"
    assert lines[1] == " 1 | 0"
    assert lines[12] == "12 | 11"


def test_width_cuts_cells_but_not_headers():
    table = format_table(["application_id", "name"], [[APP_ID, "ab"]], 8)
    assert table.split("\n") == [
        "# | application_id | name",
        "1 | daf41830       | ab",
    ]


@pytest.mark.parametrize("width", [None, 0, -1])
def test_width_zero_or_none_does_not_cut(width):
    assert format_table(["id"], [[APP_ID]], width).split("\n")[1] == f"1 | {APP_ID}"


def test_width_shorter_than_header_keeps_header_width():
    assert format_table(["message"], [["hello world"]], 3).split("\n") == ["# | message", "1 | hel"]


def test_lines_are_right_stripped_everywhere():
    table = format_table(["a", "b"], [["", ""], ["x", ""]], None)
    assert table == "# | a | b\n1 |   |\n2 | x |"
    assert all(line == line.rstrip() for line in table.split("\n"))


def test_no_rows_prints_only_the_header():
    assert format_table(["node_id", "http_host"], [], None) == "# | node_id | http_host"


def test_cell_values():
    assert cell_text(None) == "None"
    assert cell_text(8001) == "8001"
    assert cell_text(True) == "True"
    assert cell_text({"b": [1, 2], "a": "x"}) == '{"a":"x","b":[1,2]}'
    assert cell_text(["é", None]) == '["é",null]'
    assert cell_text("two\nlines\tand\r\nmore") == "two lines and more"


def test_dict_cells_are_cut_like_any_other():
    assert format_table(["data"], [[{"k": "value"}]], 5).split("\n")[1] == '1 | {"k":'


def test_row_of_wrong_length_is_refused():
    with pytest.raises(ValueError):
        format_table(["a", "b"], [["only one"]], None)
