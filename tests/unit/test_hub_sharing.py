"""Sharing (devhub.sharing) through a real JupyterHub process with devhub's configuration: the page,
and the API calls its script makes with the browser's session, grant bob access to alice's server
exp1 only (never SSH or keys), and revoke it; share codes likewise."""

import re

import pytest

from real_hub import Hub, login
from support import wait_until


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("sharing-hub"))
    yield h
    h.stop()


def page_session(hub, name):
    """A browser session on the sharing page: its cookies, and the XSRF header its script sends."""
    session = login(hub, name)
    page = session.get(hub.url + "sharing", timeout=10)
    assert page.status_code == 200, page.text
    session.headers["X-XSRFToken"] = re.search(r'xsrf_token: "([^"]+)"', page.text).group(1)
    return session, page.text


def test_share_a_named_server_with_a_user_then_revoke(hub):
    bob_token = hub.user_token("bob")
    hub.user_token("alice")
    hub.host_key_file.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnaMUWxl4K5yNfR5FS5HewqBN2TxKX5PW48XFwAS6Uy\n")
    assert hub.api("POST", "users/alice/servers/exp1").status_code in (201, 202)
    wait_until(lambda: hub.api("GET", "users/alice").json()["servers"].get("exp1", {}).get("ready"), timeout=30,
               what="alice's exp1 to be ready")
    alice, page = page_session(hub, "alice")
    # One section per server, each with the API URLs its buttons call.
    assert 'data-server="exp1"' in page and 'data-shares-url="/hub/api/shares/alice/exp1"' in page
    assert 'data-server=""' in page and 'data-codes-url="/hub/api/share-codes/alice/"' in page
    shares = hub.url + "api/shares/alice/exp1"
    # What "Share with user" sends.
    r = alice.post(shares, json={"user": "bob"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["scopes"] == ["access:servers!server=alice/exp1"]  # the browser, that server, nothing else
    assert [s["user"]["name"] for s in alice.get(shares, timeout=10).json()["items"]] == ["bob"]
    mine = hub.api("GET", "users/bob/shared", bob_token).json()["items"]
    assert [(s["server"]["user"]["name"], s["server"]["name"]) for s in mine] == [("alice", "exp1")]
    # Not SSH: bob's token still cannot read alice's keys or her servers' routes.
    r = hub.api("GET", "devhub/ssh/users/alice/keys", bob_token)
    assert r.status_code == 403 and "Not allowed to read the SSH keys of user alice" in r.json()["message"]
    r = hub.api("GET", "devhub/ssh/users/alice/servers/exp1/route", bob_token)
    assert r.status_code == 403 and "look up the SSH route" in r.json()["message"]
    # A clear error for a user who does not exist; nothing is shared.
    r = alice.post(shares, json={"user": "nobody"}, timeout=10)
    assert r.status_code == 400 and r.json()["message"] == "No such user: nobody"
    # bob cannot share alice's server onwards (JupyterHub answers as if it did not exist).
    r = hub.api("POST", "shares/alice/exp1", bob_token, json={"user": "carol"})
    assert r.status_code == 404 and [s["user"]["name"] for s in alice.get(shares, timeout=10).json()["items"]] == ["bob"]
    # What "Revoke" sends.
    r = alice.patch(shares, json={"user": "bob"}, timeout=10)
    assert r.status_code == 200 and r.json() == {}
    assert alice.get(shares, timeout=10).json()["items"] == []
    assert hub.api("GET", "users/bob/shared", bob_token).json()["items"] == []


def test_share_codes_are_created_and_revoked(hub):
    hub.user_token("alice")
    alice, _ = page_session(hub, "alice")
    codes = hub.url + "api/share-codes/alice/exp1"
    r = alice.post(codes, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["accept_url"].startswith("/hub/accept-share?code=") and r.json()["expires_at"]
    assert len(alice.get(codes, timeout=10).json()["items"]) == 1
    assert alice.delete(codes, timeout=10).status_code == 204  # "Revoke all codes"
    assert alice.get(codes, timeout=10).json()["items"] == []
    # Without the page's XSRF header, the cookie alone cannot share (cross-site requests).
    r = alice.post(codes, headers={"X-XSRFToken": ""}, timeout=10)
    assert r.status_code == 403
