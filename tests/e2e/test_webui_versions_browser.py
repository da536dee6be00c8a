"""The web interface's application page (versions, rollback, configuration.json) and its
venv pages, in a real browser (headless Chromium against a real manager with an auth_token)."""
from __future__ import annotations

import hashlib

import pytest

from tests.e2e import browser
from tests.e2e import test_webui_browser as shared
from tests.e2e.harness import LiteCluster
from tests.e2e.test_versions import fake_venv, sha1_of, versioned_app
from tests.e2e.test_webui_browser import TOKEN, expect

# the browser and the logged-in page, as the other browser tests have them (with this module's `lite`)
chromium = shared.chromium
page = shared.page

WHY = browser.missing()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"browser tests skipped: {WHY}")


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("webui_versions_browser"))
    with LiteCluster(root, token=TOKEN) as c:
        c.start_manager()
        yield c


def row_of(page, sha1: str):  # noqa: ANN001, ANN201
    return page.locator("#versions tr[data-history]", has=page.locator(f'code[title="{sha1}"]'))


def test_upload_a_second_version_roll_back_and_delete(page, lite, tmp_path):
    v1, v2 = versioned_app(str(tmp_path), 1), versioned_app(str(tmp_path), 2)
    sha1, sha2 = sha1_of(v1), sha1_of(v2)
    app_id = lite.upload(v1, "versioned")
    page.click("nav >> text=Applications")
    page.click(f'tr[data-app="{app_id}"] a >> text=versioned')
    page.wait_for_url(f"**/ui/#/app/{app_id}")
    expect(page.locator("#versions tr[data-history]")).to_have_count(1)
    expect(page.locator("#active-sha1")).to_have_text(sha1)
    assert "python3 report.py" in page.inner_text("#config")   # the active version's configuration.json

    page.set_input_files("#version-file", v2)
    page.click("#version-form button[type=submit]")
    page.wait_for_selector("text=✓ Uploaded: the new version is active")
    expect(page.locator("#versions tr[data-history]")).to_have_count(2)
    expect(page.locator("#active-sha1")).to_have_text(sha2)
    expect(row_of(page, sha2)).to_have_attribute("data-active", "true")
    assert "★active" in row_of(page, sha2).inner_text().replace(" ", "").replace("\n", "")   # a word, not colour alone

    first = row_of(page, sha1)
    history_id = first.get_attribute("data-history")
    first.locator("button.activate").click()   # the rollback
    page.wait_for_selector(f"text=✓ Version {history_id} is now active")
    expect(page.locator("#active-sha1")).to_have_text(sha1)
    expect(row_of(page, sha1)).to_have_attribute("data-active", "true")
    expect(row_of(page, sha2)).to_have_attribute("data-active", "false")
    assert lite.api.call("GET", "/app/info", {"app_id": app_id})["app_info"]["sha1"] == sha1

    # the download link gives that version's tarball (with the page's session cookie)
    href = row_of(page, sha2).locator("a >> text=Download").get_attribute("href")
    tarball = page.request.get(f"http://{lite.address}{href}")
    assert tarball.ok and hashlib.sha1(tarball.body()).hexdigest() == sha2

    # deleting the active version is refused: the page shows the manager's own message
    refused = lite.api.call("DELETE", "/app/history/delete", {"app_id": app_id, "history_id": history_id})
    assert refused["result"] != "ok" and refused["message"]
    row_of(page, sha1).locator("button.delete").click()
    alert = page.locator("#notice [role=alert]")
    expect(alert).to_contain_text(refused["message"])
    expect(page.locator("#versions tr[data-history]")).to_have_count(2)

    row_of(page, sha2).locator("button.delete").click()   # a stored version goes
    expect(page.locator("#versions tr[data-history]")).to_have_count(1)
    expect(row_of(page, sha1)).to_have_attribute("data-active", "true")


def test_create_a_venv_from_the_page_and_manage_its_versions(page, lite, tmp_path):
    one, two = fake_venv(str(tmp_path), "one"), fake_venv(str(tmp_path), "two")
    page.click("nav >> text=Venvs")
    page.set_input_files("#venv-file", one)
    page.fill("#venv-name", "shared tools")
    page.click("#venv-form button[type=submit]")
    page.wait_for_selector("text=✓ Uploaded")
    row = page.locator("tr[data-venv]", has_text="shared tools")
    expect(row).to_have_count(1)
    assert sha1_of(one)[:10] in row.inner_text()   # listed with its version
    venv_id = row.get_attribute("data-venv")
    assert lite.api.call("GET", "/venv/info", {"venv_id": venv_id})["venv_info"]["sha1"] == sha1_of(one)

    row.locator("a >> text=shared tools").click()
    page.wait_for_url(f"**/ui/#/venv/{venv_id}")
    expect(page.locator("#versions tr[data-history]")).to_have_count(1)
    page.set_input_files("#version-file", two)
    page.click("#version-form button[type=submit]")
    expect(page.locator("#versions tr[data-history]")).to_have_count(2)
    expect(page.locator("#active-sha1")).to_have_text(sha1_of(two))
    row_of(page, sha1_of(one)).locator("button.activate").click()
    expect(page.locator("#active-sha1")).to_have_text(sha1_of(one))
    assert lite.api.call("GET", "/venv/info", {"venv_id": venv_id})["venv_info"]["sha1"] == sha1_of(one)
    row_of(page, sha1_of(one)).locator("button.delete").click()   # the active one: refused, said why
    expect(page.locator("#notice [role=alert]")).to_be_visible()
    expect(page.locator("#versions tr[data-history]")).to_have_count(2)
