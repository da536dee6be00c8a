"""The web interface in a real browser: headless Chromium drives the pages of a real
manager and node (with an auth_token), as a person would."""
from __future__ import annotations

import json
import time

import pytest

from tests.e2e import browser
from tests.e2e.harness import LiteCluster, wait_for
from tests.fixtures import make_app

WHY = browser.missing()
if WHY:
    print(f"browser tests skipped: {WHY}")
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"browser tests skipped: {WHY}")

TOKEN = "browser-test-token-51d0"


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("webui_browser"))
    with LiteCluster(root, token=TOKEN) as c:
        c.start_manager()
        c.add_node(slots=4)
        c.tarball = make_app(root)   # first, second; third after both (tests/fixtures.py)
        yield c


def expect(locator):  # noqa: ANN001, ANN201 - waits without eval (the pages' CSP forbids it)
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = browser.launch(p)
        yield b
        b.close()


@pytest.fixture
def page(chromium, lite):
    """A fresh browser profile, logged in through the login page."""
    context = chromium.new_context(viewport=browser.DESKTOP)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"http://{lite.address}/ui/")
    assert page.url.endswith("/ui/login")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/")
    yield page
    errors = page.errors
    context.close()
    assert errors == []   # no script error on any page


def app_id(lite: LiteCluster) -> str:
    if not hasattr(lite, "app_id"):
        lite.app_id = lite.upload(lite.tarball, "api upload")
    return lite.app_id


def mark(page) -> None:
    """Something a reload would wipe out: proves a change arrived without one."""
    page.evaluate("window.__sameDocument = true")


def same_document(page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def state(page, action: str) -> str:
    return page.get_attribute(f'g.node[data-name="{action}"]', "data-state")


def wait_state(page, action: str, word: str, timeout: float = 30_000) -> None:
    page.wait_for_selector(f'g.node[data-name="{action}"][data-state="{word}"]', timeout=timeout)


def open_task(page, lite, task_id: str) -> None:
    page.goto(f"http://{lite.address}/ui/#/task/{task_id}")
    page.wait_for_selector("svg.dag")
    mark(page)


def test_login_upload_run_and_watch_the_dag_turn_green(page, lite):
    page.wait_for_selector("tr[data-node]")   # the cluster page: the node is there
    assert "4 busy" not in page.inner_text("main") and "0 busy · 4 free" in page.inner_text("main")
    page.click("nav >> text=Applications")
    page.set_input_files("#up-file", lite.tarball)
    page.fill("#up-name", "uploaded in the browser")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("text=✓ Uploaded")
    row = page.locator("tr", has_text="uploaded in the browser")
    row.locator("summary", has_text="Run").click()
    row.locator("input[name=task_name]").fill("browser run")
    row.locator("textarea[name=input]").fill(json.dumps({"_first": {"sleep": 3}}))
    row.locator("button", has_text="Create task").click()
    page.wait_for_url("**/ui/#/task/*")
    page.wait_for_selector("svg.dag")
    mark(page)
    wait_state(page, "first", "running")
    assert "▶ running" in page.text_content('g.node[data-name="first"]')   # a word and an icon, not colour alone
    wait_state(page, "third", "success")
    assert [state(page, a) for a in ("first", "second", "third")] == ["success"] * 3
    assert "✓ success" in page.text_content('g.node[data-name="third"]')
    page.wait_for_selector("h1 .badge.st-success")
    assert page.locator(".tl-row").count() == 3   # one timeline row per action
    assert same_document(page)   # every change above was pushed, none loaded by a reload
    task_id = page.url.rsplit("/", 1)[1]
    assert lite.api.task_info(task_id)["task_info"]["task_name"] == "browser run"


def test_a_change_committed_while_the_page_fetches_its_snapshot_is_not_lost(page, lite):
    """The task page's snapshot is read while ``first`` runs, and held back until ``first``
    has finished: the event of that finish reaches the page before the snapshot does. The
    page shows ``first`` succeeded while ``second`` still runs (no end-of-task reload yet)."""
    task_id = lite.api.task_create(app_id(lite), "race", {"_first": {"sleep": 3}, "_second": {"sleep": 30}})["task_id"]

    def first(info: dict) -> dict:
        return next((a for a in info["task_info"]["attempts"] if a["name"] == "first"), {})

    def first_done() -> bool:
        return first(lite.api.task_info(task_id)).get("status") == "success"

    def stale_snapshot(route) -> None:  # noqa: ANN001
        assert not first_done()
        response = route.fetch()   # read now, while first runs
        wait_for(first_done, 30, 0.05, "first to finish")
        time.sleep(0.5)   # its event is on the page's stream by now
        route.fulfill(response=response)

    page.route("**/ui/api/task?*", stale_snapshot)
    page.goto(f"http://{lite.address}/ui/#/task/{task_id}")
    page.wait_for_selector("svg.dag")
    wait_state(page, "first", "success", timeout=10_000)
    assert state(page, "second") == "running"
    lite.api.task_stop(task_id)


def test_a_failing_actions_log_and_what_never_ran(page, lite):
    # second fails after first is done (first would be killed, maybe before printing, otherwise)
    task_id = lite.api.task_create(app_id(lite), "fails", {"_second": {"exit": 3, "sleep": 1.5}})["task_id"]
    lite.wait_task(task_id)
    open_task(page, lite, task_id)
    wait_state(page, "second", "failed")
    assert "✗ failed" in page.text_content('g.node[data-name="second"]')
    assert state(page, "third") == "not-run"
    page.click('g.node[data-name="second"]')
    page.wait_for_selector("text=— end of log —")
    assert "running second" in page.inner_text("pre.log")
    assert page.input_value("#log-action") == "second"
    page.select_option("#log-action", "first")   # any action's log, from the list too
    page.locator(".log-bar b", has_text="first").wait_for()
    if state(page, "first") == "success":   # not killed by second's failure before it printed
        page.locator("pre.log", has_text="running first").wait_for()
    assert "running second" not in page.inner_text("pre.log")
    assert page.is_visible("#recover") and page.is_visible("#rerun")


def test_recover_rerun_and_workspace_download(page, lite):
    task_id = lite.api.task_create(app_id(lite), "to recover", {"_second": {"exit": 3, "sleep": 1}})["task_id"]
    lite.wait_task(task_id)
    open_task(page, lite, task_id)
    with page.expect_download() as download:
        page.click("#workspace")
    with open(download.value.path(), "rb") as fp:
        assert fp.read(2) == b"\x1f\x8b"   # the task's workspaces, as one tar.gz
    page.click("#recover")
    page.wait_for_selector("text=✓ Recover: done")
    wait_state(page, "second", "running")   # runs again in place, pushed to the page
    wait_state(page, "second", "failed")
    assert [a["attempt"] for a in lite.api.task_info(task_id)["task_info"]["attempts"]
            if a["name"] == "second"] == [1, 2]
    assert same_document(page)
    page.click("#rerun")
    page.wait_for_url(lambda url: "#/task/" in url and task_id not in url)
    new_id = page.url.rsplit("/", 1)[1]
    assert lite.api.task_info(new_id)["task_info"]["task_name"] == "to recover"


def test_a_running_actions_log_follows_live(page, lite):
    task_id = lite.api.task_create(app_id(lite), "slow", {"_first": {"sleep": 4}})["task_id"]
    open_task(page, lite, task_id)
    wait_state(page, "first", "running")
    page.click('g.node[data-name="first"]')
    page.locator("pre.log", has_text="running first").wait_for()
    assert state(page, "first") == "running"   # seen while the action still runs
    assert "end of log" not in page.inner_text(".log-bar")
    page.wait_for_selector("text=— end of log —", timeout=30_000)
    wait_state(page, "first", "success")
    assert same_document(page)


def test_stop_a_task(page, lite):
    task_id = lite.api.task_create(app_id(lite), "stopped", {"_first": {"sleep": 60}})["task_id"]
    open_task(page, lite, task_id)
    wait_state(page, "first", "running")
    page.click("#stop")
    wait_state(page, "first", "killed")
    page.wait_for_selector("h1 .badge.st-killed")
    assert "■ killed" in page.text_content('g.node[data-name="first"]')
    assert lite.api.task_info(task_id)["task_info"]["status"] == "kill"
    page.wait_for_selector("#recover")   # the controls follow the task's state
    assert same_document(page)


def test_generated_actions_appear_as_they_are_created(page, lite):
    generated = [{"name": f"gen_{i}", "main": "python3 echo.py", "to_action": "third"} for i in range(3)]
    task_id = lite.api.task_create(app_id(lite), "generates",
                                   {"_first": {"sleep": 1.5, "actions": generated}})["task_id"]
    open_task(page, lite, task_id)
    assert page.locator('g.node[data-name="gen_0"]').count() == 0
    wait_state(page, "third", "success")
    for i in range(3):
        assert state(page, f"gen_{i}") == "success"
    assert page.locator("path.edge.generated").count() == 3   # first -> gen_i, drawn dashed
    assert same_document(page)


def test_the_task_list_updates_live_and_filters(page, lite):
    page.goto(f"http://{lite.address}/ui/#/tasks")
    page.wait_for_selector("form.filters")
    mark(page)
    task_id = lite.api.task_create(app_id(lite), "listed live", {"_first": {"sleep": 1}})["task_id"]
    page.wait_for_selector(f'tr[data-task="{task_id}"]')
    page.wait_for_selector(f'tr[data-task="{task_id}"] .badge.st-success', timeout=30_000)
    assert same_document(page)
    page.fill("input[name=name]", "LISTED")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/ui/#/tasks?name=LISTED")
    expect(page.locator("tr[data-task]")).to_have_count(1)
    page.click(f'tr[data-task="{task_id}"] a')
    page.wait_for_selector("svg.dag")


def test_usable_at_phone_width(chromium, lite):
    context = chromium.new_context(viewport=browser.PHONE)
    page = context.new_page()
    try:
        page.goto(f"http://{lite.address}/ui/login")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        task_id = lite.api.task_create(app_id(lite), "phone", {})["task_id"]
        lite.wait_task(task_id)
        for fragment in ("#/cluster", "#/apps", "#/tasks", f"#/task/{task_id}"):
            page.goto(f"http://{lite.address}/ui/{fragment}")
            page.wait_for_selector("main h1")
            page.wait_for_load_state("networkidle")
            # nothing makes the page wider than the phone (wide content scrolls in its own box)
            assert page.evaluate("document.documentElement.scrollWidth") <= browser.PHONE["width"], fragment
        box = page.locator('g.node[data-name="third"]').bounding_box()
        first = page.locator('g.node[data-name="first"]').bounding_box()
        assert box["y"] > first["y"]   # drawn top to bottom on a narrow screen
    finally:
        context.close()


def test_the_cluster_page_follows_nodes_and_slots(page, lite):
    page.wait_for_selector("tr[data-node]")
    mark(page)
    expect(page.locator("tr[data-node]")).to_have_count(1)
    node = lite.add_node(slots=1)
    expect(page.locator("tr[data-node]")).to_have_count(2)
    task_id = lite.api.task_create(app_id(lite), "busy", {"_first": {"sleep": 30}})["task_id"]
    page.locator("tr[data-node]", has_text="1 busy").first.wait_for()   # a slot taken, pushed
    lite.api.task_stop(task_id)
    node.stop()
    lite.nodes.remove(node)
    expect(page.locator("tr[data-node]")).to_have_count(1)
    assert same_document(page)


def test_the_page_reconnects_to_a_restarted_manager(chromium, tmp_path):
    with LiteCluster(str(tmp_path)) as c:
        c.start_manager()
        c.add_node()
        app = c.upload(make_app(str(tmp_path)))
        context = chromium.new_context(viewport=browser.DESKTOP)
        try:
            page = context.new_page()
            page.goto(f"http://{c.address}/ui/#/tasks")
            page.wait_for_selector("#live.on")
            mark(page)
            c.manager.stop()
            page.wait_for_selector("#live.off")
            c.start_manager()
            page.wait_for_selector("#live.on", timeout=60_000)
            task_id = c.api.task_create(app, "after the restart", {})["task_id"]
            page.wait_for_selector(f'tr[data-task="{task_id}"] .badge.st-success', timeout=30_000)
            assert same_document(page)
        finally:
            context.close()


def test_a_restarted_manager_forgets_sessions_and_the_page_asks_to_log_in(chromium, tmp_path):
    with LiteCluster(str(tmp_path), token=TOKEN) as c:
        c.start_manager()
        context = chromium.new_context(viewport=browser.DESKTOP)
        try:
            page = context.new_page()
            page.goto(f"http://{c.address}/ui/login")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("#live.on")
            c.manager.stop()
            c.start_manager()
            page.wait_for_url("**/ui/login", timeout=60_000)
        finally:
            context.close()


def test_a_bad_upload_says_what_is_wrong(page, lite, tmp_path):
    bad = tmp_path / "not-a-tarball.tar.gz"
    bad.write_bytes(b"this is not gzip")
    page.click("nav >> text=Applications")
    page.set_input_files("#up-file", str(bad))
    page.fill("#up-name", "broken")
    page.click("#upload-form button[type=submit]")
    error = page.locator("#upload-form .error")
    error.wait_for()
    assert "InvalidParameters" in error.inner_text()
    assert not any(a["name"] == "broken" for a in lite.api.app_list(0, 0)["apps"])


def test_logout(page, lite):
    page.click("#logout")
    page.wait_for_url("**/ui/login")
    status = page.evaluate("fetch('/ui/api/session').then(r => r.status)")
    assert status == 401
    page.goto(f"http://{lite.address}/ui/")
    assert page.url.endswith("/ui/login")
