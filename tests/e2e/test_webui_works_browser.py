"""The web interface's workflow, work, schedule and service pages in a real browser
(headless Chromium against a real manager and node with an auth_token)."""
from __future__ import annotations

import json

import pytest

from tests.e2e import browser
from tests.e2e.harness import LiteCluster
from tests.e2e import test_webui_browser as shared
from tests.e2e.test_webui_browser import TOKEN, expect, mark, same_document, wait_state
from tests.fixtures import make_app

# the browser and the logged-in page, as the other browser tests have them (with this module's `lite`)
chromium = shared.chromium
page = shared.page

WHY = browser.missing()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"browser tests skipped: {WHY}")


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("webui_works_browser"))
    with LiteCluster(root, token=TOKEN) as c:
        c.start_manager()
        c.add_node(slots=4)
        c.app_id = c.upload(make_app(root), "echo")   # first, second; third after both
        yield c


def diamond(lite, name: str) -> str:
    """A workflow a -> (b, c) -> d, each entry the echo application."""
    apps = [{"name": "a", "app_id": lite.app_id, "condition": []},
            {"name": "b", "app_id": lite.app_id, "condition": ["a"]},
            {"name": "c", "app_id": lite.app_id, "condition": ["a"]},
            {"name": "d", "app_id": lite.app_id, "condition": ["b", "c"]}]
    reply = lite.api.call("POST", "/workflow/create", json={"name": name, "configuration": {"applications": apps}})
    assert reply["result"] == "ok", reply
    return reply["workflow_id"]


def test_a_diamond_works_page_turns_green_live(page, lite):
    workflow_id = diamond(lite, "diamond")
    page.click("nav >> text=Workflows")
    page.click(f'tr[data-workflow="{workflow_id}"] a >> text=diamond')
    page.wait_for_selector("svg.dag")
    assert page.locator("svg.dag g.node").count() == 4 and page.locator("svg.dag path.edge").count() == 4
    page.fill("#work-name", "watched")
    page.fill("#work-input", json.dumps({"_first": {"sleep": 1.5}}))
    page.click("#work-form button[type=submit]")
    page.wait_for_url("**/ui/#/work/*")
    page.wait_for_selector("svg.dag")
    mark(page)
    wait_state(page, "a", "running")
    assert "▶ running" in page.text_content('g.node[data-name="a"]')   # a word and an icon, not colour alone
    assert page.get_attribute('g.node[data-name="d"]', "data-state") == "waiting"
    wait_state(page, "b", "running")
    wait_state(page, "d", "success", timeout=60_000)
    for entry in "abcd":
        assert page.get_attribute(f'g.node[data-name="{entry}"]', "data-state") == "success"
    page.wait_for_selector("h1 .badge.st-success")
    # the entries table is redrawn from the same pushes, coalesced: it follows within moments
    page.wait_for_selector('tr[data-entry="d"] .badge.st-success')
    assert page.locator('tr[data-entry="d"] .badge.st-success').count() == 1
    assert same_document(page)   # every change above was pushed, none loaded by a reload
    work_id = page.url.rsplit("/", 1)[1]
    info = lite.api.call("GET", "/work/info", {"work_id": work_id})["work_info"]
    assert info["status"] == "success" and info["name"] == "watched"
    page.click('g.node[data-name="c"]')   # each entry opens its task
    page.wait_for_url(f"**/ui/#/task/{info['result']['c']['task_id']}")
    page.wait_for_selector('g.node[data-name="third"][data-state="success"]')
    page.click("#work-link")   # and the task leads back to its work
    page.wait_for_url(f"**/ui/#/work/{work_id}")
    page.wait_for_selector('g.node[data-name="d"][data-state="success"]')


def test_works_list_filters_and_a_work_stops_and_recovers(page, lite):
    workflow_id = diamond(lite, "stoppable")
    work_id = lite.api.call("POST", "/work/create", json={"workflow_id": workflow_id, "name": "long",
                                                          "input_data": {"_first": {"sleep": 60}}})["work_id"]
    page.goto(f"http://{lite.address}/ui/#/works?workflow_id={workflow_id}")
    expect(page.locator("tr[data-work]")).to_have_count(1)
    page.click(f'tr[data-work="{work_id}"] a >> text=long')
    wait_state(page, "a", "running")
    mark(page)
    page.click("#stop")
    wait_state(page, "a", "killed")
    page.wait_for_selector("h1 .badge.st-killed")
    assert page.get_attribute('g.node[data-name="d"]', "data-state") == "not-run"
    page.wait_for_selector("#recover")   # the controls follow the work's state
    assert same_document(page)
    page.goto(f"http://{lite.address}/ui/#/works?status=kill")
    page.wait_for_selector(f'tr[data-work="{work_id}"] .badge.st-killed')
    page.goto(f"http://{lite.address}/ui/#/workflow/{workflow_id}")   # the workflow lists its works
    page.wait_for_selector(f'tr[data-work="{work_id}"] .badge.st-killed')
    page.goto(f"http://{lite.address}/ui/#/tasks?work_id={work_id}")   # the task list's work filter
    expect(page.locator("tr[data-task]")).to_have_count(1)
    assert "long/a" in page.inner_text("tr[data-task]")


def test_schedules_page_shows_next_fires_and_disables(page, lite):
    reply = lite.api.call("POST", "/schedule/create", json={
        "schedule_name": "nightly", "source": "application", "source_id": lite.app_id, "cron": "30 3 * * *",
        "timezone": "UTC", "enable": True})
    schedule_id = reply["schedule_id"]
    page.click("nav >> text=Schedules")
    row = page.locator(f'tr[data-schedule="{schedule_id}"]')
    row.wait_for()
    assert "30 3 * * *" in row.inner_text() and "✓ enabled" in row.inner_text()
    assert row.locator("ul.fires li").count() == 3 and "03:30:00" in row.locator("ul.fires li").first.inner_text()
    row.locator("button.toggle").click()
    page.wait_for_selector("text=✓ Disabled nightly")
    expect(row.locator(".badge")).to_have_text("✗ disabled")
    info = lite.api.call("GET", "/schedule/info", {"schedule_id": schedule_id})["schedule_info"]
    assert info["enable"] is False
    row.locator("button.toggle").click()
    expect(row.locator(".badge")).to_have_text("✓ enabled")


def test_services_page_shows_the_task_and_enables_and_disables(page, lite):
    service_id = lite.api.call("POST", "/service/create", json={
        "name": "keeper", "app_id": lite.app_id, "input_data": {"_all": {"sleep": 60}}, "enable": False})["service_id"]
    page.click("nav >> text=Services")
    row = page.locator(f'tr[data-service="{service_id}"]')
    row.wait_for()
    expect(row.locator("td").nth(1)).to_have_text("✗ disabled")
    row.locator("button.toggle").click()
    page.wait_for_selector("text=✓ Enabled keeper")
    row.locator("a", has_text="open task").wait_for(timeout=30_000)   # its task, pushed in
    row.locator(".badge.st-running").wait_for(timeout=30_000)
    info = lite.api.call("GET", "/service/info", {"service_id": service_id})["service_info"]
    assert info["enable"] is True and info["task_id"]
    row.locator("button.toggle").click()
    page.wait_for_selector("text=✓ Disabled keeper")
    expect(row.locator("td").nth(1)).to_have_text("✗ disabled")
    assert lite.api.call("GET", "/service/info", {"service_id": service_id})["service_info"]["enable"] is False


def test_the_new_pages_fit_a_phone(chromium, lite):
    workflow_id = diamond(lite, "on a phone")
    work_id = lite.api.call("POST", "/work/create", json={"workflow_id": workflow_id, "name": "small",
                                                          "input_data": {}})["work_id"]
    context = chromium.new_context(viewport=browser.PHONE)
    page = context.new_page()
    try:
        page.goto(f"http://{lite.address}/ui/login")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        for fragment in ("#/workflows", f"#/workflow/{workflow_id}", "#/works", f"#/work/{work_id}",
                         "#/schedules", "#/services"):
            page.goto(f"http://{lite.address}/ui/{fragment}")
            page.wait_for_selector("main h1")
            page.wait_for_load_state("networkidle")
            # nothing makes the page wider than the phone (wide content scrolls in its own box)
            assert page.evaluate("document.documentElement.scrollWidth") <= browser.PHONE["width"], fragment
            assert page.locator("nav a[aria-current=page]").is_visible()
        page.goto(f"http://{lite.address}/ui/#/work/{work_id}")
        wait_state(page, "d", "success", timeout=60_000)
        first, last = (page.locator(f'g.node[data-name="{n}"]').bounding_box() for n in "ad")
        assert last["y"] > first["y"]   # drawn top to bottom on a narrow screen
    finally:
        context.close()
