#!/usr/bin/env python3
"""Screenshots of the web interface for the README: docs/img/ui-<page>-<desktop|phone>.png.

Starts a manager and two nodes on free loopback ports in a temporary directory (as the
end-to-end tests do), runs a few tasks (a success with generated actions, a failure
after a retry, one still running), works of a diamond workflow (finished, failed,
running), schedules and services, application and venv versions, then has headless Chromium (Debian's ``chromium``)
log in and photograph each page at 1280x800 and at 390 px wide.

    .venv/bin/python scripts/screenshots.py [--out docs/img]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests.e2e import browser  # noqa: E402
from tests.e2e.harness import LiteCluster, wait_for  # noqa: E402
from tests.e2e.test_versions import fake_venv  # noqa: E402
from tests.fixtures import make_app  # noqa: E402

TOKEN = "screenshot-token"
ETL = {"actions": [
    {"name": "extract", "condition": [], "main": "python3 echo.py"},
    {"name": "fetch_rates", "condition": [], "main": "python3 echo.py", "retries": 1, "retry_delay": 0.2},
    {"name": "clean", "condition": ["extract"], "main": "python3 echo.py"},
    {"name": "transform", "condition": ["clean", "fetch_rates"], "main": "python3 echo.py"},
    {"name": "load", "condition": ["transform"], "main": "python3 echo.py"},
    {"name": "report", "condition": ["load"], "main": "python3 echo.py"},
]}
# extract generates shard_N at run time, each feeding load (tests/fixtures.py's echo.py
# does what an action's "_<name>" input says: sleep, exit code, actions to generate)
SHARDS = [{"name": f"shard_{i}", "main": "python3 echo.py", "to_action": "load"} for i in range(4)]


def work_scene(lite: LiteCluster, etl: str, demo: str) -> dict:
    """A diamond workflow with a finished, a failed and a running work; schedules; services."""
    call = lite.api.call
    apps = [{"name": "ingest", "app_id": demo, "condition": []},
            {"name": "clean", "app_id": etl, "condition": ["ingest"]},
            {"name": "enrich", "app_id": demo, "condition": ["ingest"]},
            {"name": "publish", "app_id": demo, "condition": ["clean", "enrich"]}]
    workflow = call("POST", "/workflow/create", json={"name": "daily-report", "description": "ingest, clean and "
                    "enrich side by side, publish", "configuration": {"applications": apps}})["workflow_id"]
    call("POST", "/workflow/create", json={"name": "archive", "enable": False, "configuration": {
        "applications": [{"name": "pack", "app_id": demo}]}})

    def work(name: str, data: dict) -> str:
        return call("POST", "/work/create", json={"workflow_id": workflow, "name": name, "input_data": data})["work_id"]

    def info(work_id: str) -> dict:
        return call("GET", "/work/info", {"work_id": work_id})["work_info"]

    done = work("report 2026-11-29", {})
    wait_for(lambda: info(done)["stage"] == "finished", 60, 0.2, "a work to finish")
    failed = work("report 2026-11-30", {"_second": {"exit": 1}})
    wait_for(lambda: info(failed)["stage"] == "finished", 60, 0.2, "a work to fail")
    running = work("report 2026-12-01", {"_extract": {"sleep": 300}})
    wait_for(lambda: (info(running)["result"]["clean"]["stage"] == "running"
                      and info(running)["result"]["enrich"]["status"] == "success"), 60, 0.2, "a work to run")
    for body in ({"schedule_name": "nightly-etl", "source": "application", "source_id": etl, "cron": "0 2 * * *",
                  "timezone": "Europe/Berlin", "enable": True},
                 {"schedule_name": "daily-report", "source": "workflow", "source_id": workflow,
                  "cron": "30 6 * * 1-5", "timezone": "UTC", "enable": True},
                 {"schedule_name": "year-end", "source": "application", "source_id": demo, "cron": "0 0 31 12 *",
                  "enable": False}):
        call("POST", "/schedule/create", json=body)
    call("POST", "/service/create", json={"name": "rates-feed", "app_id": demo, "enable": True,
                                          "description": "keeps the rates current",
                                          "input_data": {"_all": {"sleep": 600}}})
    call("POST", "/service/create", json={"name": "mail-relay", "app_id": demo, "enable": False})
    return {"workflow": workflow, "work": running}


def scene(lite: LiteCluster, root: str) -> dict:
    etl = lite.api.app_create(make_app(root, ETL, name="etl.tar.gz"), "nightly-etl",
                              "extract, shards generated at run time, load")["app_id"]
    demo = lite.api.app_create(make_app(root, name="demo.tar.gz"), "multiple_actions",
                               "first and second, then third")["app_id"]
    works = work_scene(lite, etl, demo)
    ok = lite.api.task_create(etl, "nightly 2026-11-29", {"_extract": {"actions": SHARDS}})["task_id"]
    lite.wait_task(ok)
    failed = lite.api.task_create(etl, "nightly 2026-11-30", {"_fetch_rates": {"exit": 2}})["task_id"]
    lite.wait_task(failed)
    for i in range(3):
        lite.api.task_create(etl, f"hourly-{i}", {"_extract": {"actions": SHARDS}})
    slow = [dict(s, input_data={"_all": {"sleep": 60 if s["name"] != "shard_3" else 0.5}}) for s in SHARDS]
    running = lite.api.task_create(etl, "nightly 2026-12-01", {"_extract": {"actions": slow}})["task_id"]

    def shards_running():
        info = lite.api.task_info(running)["task_info"]
        return sum(1 for a in info.get("attempts", []) if a["name"].startswith("shard_") and a["status"] is None) >= 3

    wait_for(shards_running, 60, 0.2, "shards to run")
    return {"running": running, "ok": ok, "failed": failed, **works, **version_scene(lite, root, etl)}


def version_scene(lite: LiteCluster, root: str, etl: str) -> dict:
    """A second and third version of the ETL application, rolled back to the second; a venv
    with two versions."""
    for n in (2, 3):
        lite.api.app_update(etl, make_app(root, ETL, files={"VERSION": str(n)}, name=f"etl-{n}.tar.gz"))
    second = lite.api.history_list("app", etl)["app_histories"][1]["history_id"]
    lite.api.history_activate("app", etl, second)
    venv = lite.api.venv_create(fake_venv(root, "one"), "py311-pandas", "pandas, numpy, requests")["venv_id"]
    lite.api.venv_create(fake_venv(root, "tools"), "py311-tools", "")
    lite.api.venv_update(venv, fake_venv(root, "two"))
    return {"app": etl, "venv": venv}


def shoot(chromium, lite: LiteCluster, ids: dict, out: str) -> list[str]:
    written = []
    for kind, viewport in (("desktop", browser.DESKTOP), ("phone", browser.PHONE)):
        context = chromium.new_context(viewport=viewport, device_scale_factor=1)
        page = context.new_page()
        page.goto(f"http://{lite.address}/ui/")
        path = os.path.join(out, f"ui-login-{kind}.png")
        page.screenshot(path=path)
        written.append(path)
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url("**/ui/")
        for name, fragment in (("cluster", "#/cluster"), ("apps", "#/apps"), ("tasks", "#/tasks"),
                               ("task", f"#/task/{ids['running']}"), ("task-failed", f"#/task/{ids['failed']}"),
                               ("workflows", "#/workflows"), ("workflow", f"#/workflow/{ids['workflow']}"),
                               ("works", "#/works"), ("work", f"#/work/{ids['work']}"),
                               ("schedules", "#/schedules"), ("services", "#/services"),
                               ("app", f"#/app/{ids['app']}"), ("venvs", "#/venvs"), ("venv", f"#/venv/{ids['venv']}")):
            page.goto(f"http://{lite.address}/ui/{fragment}")
            page.wait_for_selector("main h1")
            page.wait_for_load_state("networkidle")
            if name == "task":
                page.wait_for_selector('g.node[data-name="shard_3"]')
                page.select_option("#log-action", "shard_0")   # a click would scroll the graph
                page.locator("pre.log", has_text="running").wait_for()
            if name in ("app", "venv"):
                page.wait_for_selector("#versions tr[data-history]")
            if name in ("workflow", "work"):
                page.wait_for_selector("svg.dag")
            if name == "task-failed":
                page.wait_for_selector("svg.dag")
                page.select_option("#log-action", "fetch_rates")
                page.locator("text=— end of log —").wait_for()
                page.click(".attempt-table summary")
            page.evaluate("window.scrollTo(0, 0)")   # the sticky bar at the top of a full-page shot
            time.sleep(0.5)
            path = os.path.join(out, f"ui-{name}-{kind}.png")
            page.screenshot(path=path, full_page=name not in ("task", "task-failed") or kind == "phone")
            written.append(path)
        context.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "docs", "img"))
    args = parser.parse_args()
    why = browser.missing()
    if why:
        print(f"cannot take screenshots: {why}", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lp-screens-") as root:
        with LiteCluster(root, token=TOKEN) as lite:
            lite.start_manager()
            lite.add_node(slots=4)
            lite.add_node(slots=2)
            ids = scene(lite, root)
            with sync_playwright() as p:
                chromium = browser.launch(p)
                try:
                    for path in shoot(chromium, lite, ids, args.out):
                        print(path)
                finally:
                    chromium.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
