"""Pair work in real Chromium, two browsers: alice shares her named server exp1 with bob on the
sharing page, bob opens it on alice's origin and runs a cell; alice revokes and bob is refused. The
share never opens SSH: bob's key cannot log in as alice+exp1."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from stack_support import add_key, hub_api, start_server, stop_server
from support import CHROMIUM_ARGS, SshTarget, cut_off, goto, log_in_with_demo_idp, wait_until
from test_browser import visible_with_reloads, wait_for_lab


@pytest.fixture
def browsers(artifacts):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        pages = {}
        try:
            for user in ("alice", "bob"):  # two people, two browser profiles (cookie jars)
                pages[user] = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900}).new_page()
            yield pages
        finally:
            for user, page in pages.items():
                page.screenshot(path=str(artifacts / f"sharing-{user}-last.png"))
            browser.close()


@pytest.fixture
def exp1(stack, alice_token):
    start_server(stack, alice_token, "alice", server="exp1")
    yield
    stop_server(stack, alice_token, "alice", server="exp1")
    hub_api(stack, alice_token, "DELETE", "/users/alice/servers/exp1", json={"remove": True})


def log_in(stack, page, user: str, then: str) -> None:
    log_in_with_demo_idp(page, f"{stack.url}/hub/oauth_login?next={then}", user, re.compile(re.escape(then)))


def open_shared(page, url: str) -> None:
    """Open a server someone shared: JupyterHub asks the visitor to authorize access first."""
    goto(page, url)
    authorize = page.get_by_role("button", name=re.compile("Authorize"))
    try:
        authorize.click(timeout=15_000)
    except PlaywrightError:
        pass  # no confirmation asked


def share_with(page, section, user: str, tries: int = 3) -> None:
    """Share the server of `section` with `user` on the sharing page, and see the share listed. When a
    request of the page was cut off meanwhile (ERR_NETWORK_CHANGED: a spawn changed this host's
    interfaces, see support.goto), the page is loaded again and the share made again, as its user
    would; any other failure fails."""
    for attempt in range(1, tries + 1):
        failed: list[str] = []

        def note(request) -> None:
            failed.append(f"{request.url}: {request.failure}")

        page.on("requestfailed", note)
        try:
            section.locator(".devhub-share-user").fill(user)
            section.locator(".devhub-share-add").click()
            expect(section.locator(".devhub-share-rows tr")).to_have_text([re.compile(rf"^{user}")], timeout=15_000)
            return
        except AssertionError as exc:
            if attempt == tries or not any(cut_off(f) for f in failed):
                raise AssertionError(f"no share with {user} listed at {page.url}; failed requests: {failed}") from exc
            print(f"share_with: a request was cut off ({failed}); sharing again")
            goto(page, page.url)
        finally:
            page.remove_listener("requestfailed", note)


def refused(page, url: str) -> bool:
    response = goto(page, url + "api/contents")
    return response is not None and response.status == 403


def test_alice_shares_exp1_with_bob_then_revokes(stack, browsers, exp1, bob_token, tmp_path):
    alice, bob = browsers["alice"], browsers["bob"]
    log_in(stack, alice, "alice", "/hub/sharing")
    section = alice.locator('.devhub-share[data-server="exp1"]')
    expect(section.locator(".badge")).to_have_text("running")
    exp1_url = section.locator(".devhub-share-url").inner_text().strip()
    assert exp1_url.startswith("https://alice.devhub.localhost:") and exp1_url.endswith("/user/alice/exp1/")
    # Before any share, bob's browser is refused there.
    log_in(stack, bob, "bob", "/hub/home")
    assert refused(bob, exp1_url)
    share_with(alice, section, "bob")

    # bob, in his own browser, on alice's origin: JupyterLab of exp1, and a cell runs there.
    open_shared(bob, exp1_url + "lab")
    wait_for_lab(bob, exp1_url + "lab", re.compile(r"/user/alice/exp1/lab"))
    launcher = bob.locator(".jp-LauncherCard[data-category='Notebook']").first
    visible_with_reloads(bob, launcher)
    launcher.click()
    cell = bob.locator(".jp-Notebook .jp-Cell .cm-content").first
    expect(cell).to_be_visible(timeout=60_000)
    expect(bob.get_by_text(re.compile(r"\| Idle")).first).to_be_visible(timeout=120_000)
    cell.click()
    bob.keyboard.type("import socket; print('pair-' + socket.gethostname())")
    bob.keyboard.press("Shift+Enter")
    expect(bob.locator(".jp-OutputArea-output").filter(has_text="pair-devhub-alice-s-exp1").first).to_be_visible(
        timeout=90_000)

    # The share is for the browser only: bob's key does not log in as alice+exp1.
    bob_key, bob_key_id = add_key(stack, bob_token, "bob", tmp_path, "bob-pair")
    try:
        ssh = SshTarget(stack.ssh_port, bob_key.private, user="alice+exp1", host="localhost").run("true", timeout=60)
        assert ssh.returncode == 255 and "Permission denied (publickey)" in ssh.stderr, ssh.stderr
    finally:
        hub_api(stack, bob_token, "DELETE", f"/devhub/ssh/users/bob/keys/{bob_key_id}")

    # alice revokes; within the server's access cache (30 s) bob is refused.
    section.locator(".devhub-share-revoke").click()
    expect(section.locator(".devhub-share-rows tr")).to_have_count(0)

    wait_until(lambda: refused(bob, exp1_url), 120, interval=5, what="bob to lose access to alice's exp1")
    expect(bob.locator("body")).to_contain_text("Forbidden")  # the API answer of the server to bob now

    # A share code: alice makes a link, bob accepts it in his browser and is let in again; the
    # accepted code is a share like the first, and alice revokes it the same way.
    section.locator(".devhub-code-add").click()
    link = section.locator(".devhub-code-link")
    expect(link).to_contain_text("/hub/accept-share?code=")
    expect(section.locator(".devhub-code-count")).to_have_text("1")
    goto(bob, link.inner_text().strip())
    expect(bob.locator("body")).to_contain_text("invited to access alice's server")
    bob.get_by_role("button", name="Accept invitation").click()
    bob.wait_for_load_state("domcontentloaded")

    def let_in_again() -> bool:
        open_shared(bob, exp1_url + "api/contents")
        return not refused(bob, exp1_url)

    wait_until(let_in_again, 120, interval=5, what="bob to get into alice's exp1 with the share code")
    alice.reload(wait_until="domcontentloaded")
    section = alice.locator('.devhub-share[data-server="exp1"]')
    expect(section.locator(".devhub-share-rows tr")).to_have_text([re.compile(r"^bob")])
    section.locator(".devhub-code-revoke").click()
    expect(section.locator(".devhub-code-count")).to_have_text("0")
    section.locator(".devhub-share-revoke").click()
    expect(section.locator(".devhub-share-rows tr")).to_have_count(0)
    wait_until(lambda: refused(bob, exp1_url), 120, interval=5, what="bob to lose access again")
