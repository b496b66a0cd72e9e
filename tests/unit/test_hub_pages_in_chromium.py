"""devhub's own hub pages in real Chromium against a real JupyterHub process (no Docker): the SSH
keys page adds and deletes a key, the sharing page shares a server and revokes the share, both
through their scripts (devhub-api.js) with the browser's session and XSRF token."""

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from support import CHROMIUM_ARGS, wait_until
from real_hub import Hub, ed_line


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("pages-hub"))
    yield h
    h.stop()


@pytest.fixture
def page(hub, artifacts):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context().new_page()
        try:
            yield page
        finally:
            page.screenshot(path=str(artifacts / "hub-pages-last.png"))
            browser.close()


def log_in(hub, page, name: str) -> None:
    page.goto(hub.url + "login", wait_until="domcontentloaded")
    page.locator("#username_input").fill(name)
    page.locator("#password_input").fill("pw")
    page.locator("#login_submit").click()
    page.wait_for_url(re.compile(r"/hub/"))


def test_keys_page_adds_and_deletes_a_key(hub, page):
    log_in(hub, page, "kim")
    page.goto(hub.url + "ssh-keys", wait_until="domcontentloaded")
    page.locator("#ssh-key-text").fill(ed_line("kim@laptop"))
    page.locator("#ssh-key-name").click()  # leaving the key field names the key after its comment
    expect(page.locator("#ssh-key-name")).to_have_value("kim@laptop")
    page.get_by_role("button", name="Add key").click()
    expect(page.locator("#ssh-keys-rows tr")).to_have_count(1)
    expect(page.locator("#ssh-keys-rows tr td").first).to_have_text("kim@laptop")
    # A bad key: the API's reason is shown, nothing is added.
    page.locator("#ssh-key-name").fill("broken")
    page.locator("#ssh-key-text").fill("ssh-ed25519 not-base64")
    page.get_by_role("button", name="Add key").click()
    expect(page.locator("#ssh-key-error")).to_be_visible()
    expect(page.locator("#ssh-keys-rows tr")).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".ssh-key-delete").click()
    expect(page.locator("#ssh-keys-rows tr")).to_have_count(0)
    assert hub.api("GET", "devhub/ssh/users/kim/keys").json()["keys"] == []


def test_sharing_page_shares_and_revokes(hub, page):
    lou = hub.user_token("lou")  # the user to share with
    hub.user_token("kim")
    hub.host_key_file.write_text(ed_line("").strip() + "\n")
    assert hub.api("POST", "users/kim/servers/exp1").status_code in (201, 202)
    wait_until(lambda: hub.api("GET", "users/kim").json()["servers"].get("exp1", {}).get("ready"), timeout=30,
               what="kim's exp1 to be ready")
    log_in(hub, page, "kim")
    page.goto(hub.url + "sharing", wait_until="domcontentloaded")
    section = page.locator('.devhub-share[data-server="exp1"]')
    section.locator(".devhub-share-user").fill("nobody")
    section.locator(".devhub-share-add").click()
    expect(page.locator("#sharing-error")).to_have_text("No such user: nobody")
    section.locator(".devhub-share-user").fill("lou")
    section.locator(".devhub-share-add").click()
    expect(section.locator(".devhub-share-rows tr td").first).to_have_text("lou")
    assert [s["server"]["name"] for s in hub.api("GET", "users/lou/shared", lou).json()["items"]] == ["exp1"]
    section.locator(".devhub-code-add").click()
    expect(section.locator(".devhub-code-link")).to_contain_text("/hub/accept-share?code=")
    expect(section.locator(".devhub-code-count")).to_have_text("1")
    section.locator(".devhub-code-revoke").click()
    expect(section.locator(".devhub-code-count")).to_have_text("0")
    section.locator(".devhub-share-revoke").click()
    expect(section.locator(".devhub-share-rows tr")).to_have_count(0)
    assert hub.api("GET", "users/lou/shared", lou).json()["items"] == []
    hub.api("DELETE", "users/kim/servers/exp1")
