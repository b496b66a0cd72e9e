"""The shared-origin takeover, performed: alice replaces her Jupyter with her own page, bob opens her
link in Chromium while logged in to the hub, and her script tries to add her SSH key to bob's account
and mint a token for him. With a web origin per user (SERVER_ROUTING=subdomain, the default) every
attempt fails: bob's keys and tokens are unchanged and alice's key does not open `ssh bob@`."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from stack_support import hub_api, start_server, stop_server, user_container
from support import CHROMIUM_ARGS, SshTarget, exec_out, goto, log_in_with_demo_idp, make_keypair, wait_until

HOSTILE_PAGE = (Path(__file__).resolve().parents[1] / "in_image" / "hostile_page.py").read_text()
ATTACKS = ("steal-xsrf-fetch", "steal-xsrf-iframe", "steal-xsrf-popup", "add-key-stolen-xsrf",
           "add-key-tossed-cookie", "create-token", "service-worker")


@pytest.fixture
def hostile_alice(stack, alice_token, docker_client):
    """alice's server with her own page on port 8888 instead of Jupyter (she is uid 1000 in it, as in a
    terminal); her key pair. Her server is stopped afterwards."""
    start_server(stack, alice_token, "alice")
    box = user_container(docker_client, "alice")
    exec_out(box, ["supervisorctl", "stop", "jupyter"], user="1000")
    return box


def reports(box) -> list[dict]:
    text = exec_out(box, ["sh", "-c", "cat /tmp/hostile-reports.jsonl 2>/dev/null || true"], user="1000")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def log_in_in_chromium(page, stack, user: str) -> None:
    log_in_with_demo_idp(page, f"{stack.url}/hub/oauth_login?next=%2Fhub%2Fhome", user, re.compile(r"/hub/home"))


@dataclass
class Attack:
    seen: dict  # attack name -> its reported outcome
    key: object  # alice's key pair
    keys_before: dict
    tokens_before: set


def bobs_tokens(stack, bob_token) -> set:
    return {t["id"] for t in hub_api(stack, bob_token, "GET", "/users/bob/tokens").json()["api_tokens"]}


@pytest.fixture
def attack(stack, hostile_alice, alice_token, bob_token, tmp_path):
    """alice's page runs in bob's Chromium, logged in to the hub, for 10 s; what it reported."""
    key = make_keypair(tmp_path, name="alice-key")
    added = hub_api(stack, alice_token, "POST", "/devhub/ssh/users/alice/keys", json={"name": "alice", "key": key.public_line})
    assert added.status_code == 201
    keys_before = hub_api(stack, bob_token, "GET", "/devhub/ssh/users/bob/keys").json()
    tokens_before = bobs_tokens(stack, bob_token)
    hostile_alice.exec_run(["python3", "-c", HOSTILE_PAGE, "8888", "/user/alice", "bob", key.public_line],
                           user="1000", detach=True)
    alice_page = f"{stack.server_url('alice')}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            log_in_in_chromium(page, stack, "bob")
            logged_in = time.monotonic()
            recent = int(stack.env.get("RECENT_LOGIN_SECONDS") or 0)
            page.wait_for_timeout(max(0.0, recent + 1 - (time.monotonic() - logged_in)) * 1000)  # bob's login ages
            # bob opens alice's link and stays on it for 10 s (her page needs about 6 of them).
            wait_until(lambda: page.goto(alice_page).ok, 60, interval=1, what="alice's own page to be served")
            opened = time.monotonic()
            wait_until(lambda: any(r["attack"] == "done" for r in reports(hostile_alice)), 60, interval=0.5,
                       what="alice's script to run every attack")
            page.wait_for_timeout(max(0.0, 10 - (time.monotonic() - opened)) * 1000)  # the 10 s bob stays on it
            still_bob = goto(page, f"{stack.url}/hub/home", wait_until="load")
            assert still_bob.ok and "/hub/home" in page.url  # bob's hub session was there all along
        finally:
            browser.close()
    yield Attack({r["attack"]: r for r in reports(hostile_alice)}, key, keys_before, tokens_before)
    stop_server(stack, alice_token, "alice")
    assert hub_api(stack, alice_token, "DELETE", f"/devhub/ssh/users/alice/keys/{added.json()['id']}").status_code == 204


def assert_bob_unchanged(stack, bob_token, attack: Attack) -> None:
    """Nothing changed on bob's account, and alice's key does not open his SSH."""
    assert hub_api(stack, bob_token, "GET", "/devhub/ssh/users/bob/keys").json() == attack.keys_before
    assert bobs_tokens(stack, bob_token) == attack.tokens_before
    as_bob = SshTarget(stack.ssh_port, attack.key.private, user="bob").run("true")
    assert as_bob.returncode == 255 and "Permission denied (publickey)" in as_bob.stderr, as_bob.stderr


def test_alices_page_cannot_act_as_bob(stack, attack, bob_token):
    seen = attack.seen
    # Her page ran in bob's browser, on her own origin, without the hub's cookies.
    assert seen["page"]["origin"] == stack.server_url("alice").split("/user/")[0], seen["page"]
    assert seen["page"]["hub"] == stack.url and "jupyterhub" not in seen["page"]["cookies"]
    assert set(ATTACKS) <= set(seen), seen
    # Each attempt failed, and said how: the browser kept her out of the hub's origin.
    assert "Failed to fetch" in seen["steal-xsrf-fetch"]["error"], seen["steal-xsrf-fetch"]
    for name in ("steal-xsrf-iframe", "steal-xsrf-popup"):
        outcome = seen[name]
        assert not outcome.get("stolen") and re.search(r"SecurityError|cross-origin|null|blocked", outcome["error"]), outcome
    assert seen["add-key-stolen-xsrf"] == {"attack": "add-key-stolen-xsrf", "error": "no XSRF token to use"}
    assert seen["add-key-tossed-cookie"].get("sent") == "opaque"  # sent; the hub's answer is checked below
    assert "Failed to fetch" in seen["create-token"]["error"], seen["create-token"]
    assert "SecurityError" in seen["service-worker"]["error"], seen["service-worker"]
    assert_bob_unchanged(stack, bob_token, attack)


@pytest.fixture
def path_routing(stack):
    """The opted-in SERVER_ROUTING=path (proxy and hub recreated), logins 'recent' for 2 s only."""
    env = {"SERVER_ROUTING": "path", "RECENT_LOGIN_SECONDS": "2"}
    saved = dict(stack.env)
    stack.env.update(env)
    stack.compose("up", "--detach", "--no-deps", "--force-recreate", "--wait", "proxy", "hub")
    stack.wait_for_hub("the hub to answer with path routing")
    try:
        yield
    finally:
        stack.env.clear()
        stack.env.update(saved)
        stack.compose("up", "--detach", "--no-deps", "--force-recreate", "--wait", "proxy", "hub")
        stack.wait_for_hub("the hub to answer with subdomain routing again")


def test_with_opted_in_path_routing_the_mitigations_hold(stack, path_routing, attack, bob_token):
    """One shared origin: her script reads bob's XSRF token (the reason this mode is opt-in), but
    adding a key and creating a token from a browser need a login younger than bob's, and no
    service worker can take the whole origin."""
    seen = attack.seen
    assert seen["page"]["origin"] == stack.url and seen["steal-xsrf-fetch"] == {"attack": "steal-xsrf-fetch", "stolen": True}
    assert seen["add-key-stolen-xsrf"]["status"] == 403, seen["add-key-stolen-xsrf"]
    assert seen["create-token"]["status"] == 403 and not seen["create-token"]["token"], seen["create-token"]
    assert "SecurityError" in seen["service-worker"]["error"], seen["service-worker"]
    assert_bob_unchanged(stack, bob_token, attack)
