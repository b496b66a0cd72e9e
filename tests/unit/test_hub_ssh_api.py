"""The SSH keys REST API, route API and page, through a real JupyterHub process started with devhub's
configuration (real_hub.Hub: only the proxy, the spawner and the authenticator stand in)."""

import json
import re
import sqlite3
import time
from urllib.parse import quote

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from real_hub import Hub, ed_line, login
from support import wait_until


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub"))
    yield h
    h.stop()


def keys_path(name):
    return f"devhub/ssh/users/{quote(name, safe='')}/keys"


def test_user_adds_lists_and_deletes_own_keys(hub):
    token = hub.user_token("alice")
    assert hub.api("GET", keys_path("alice"), token).json() == {"keys": [], "entries": []}
    line = ed_line("alice@laptop")
    r = hub.api("POST", keys_path("alice"), token, json={"name": "laptop", "key": "  " + line + "\n"})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert set(entry) == {"id", "name", "key", "fingerprint", "created"}
    assert entry["name"] == "laptop" and entry["key"] == line and entry["fingerprint"].startswith("SHA256:")
    r = hub.api("GET", keys_path("alice"), token)
    assert r.status_code == 200
    assert r.json() == {"keys": [line], "entries": [entry]}
    # The gateway's token reads them too.
    assert hub.api("GET", keys_path("alice"), hub.gateway_token).json()["keys"] == [line]
    assert hub.api("DELETE", f"{keys_path('alice')}/{entry['id']}", token).status_code == 204
    assert hub.api("DELETE", f"{keys_path('alice')}/{entry['id']}", token).status_code == 404
    assert hub.api("DELETE", f"{keys_path('alice')}/bogus", token).status_code == 404
    assert hub.api("GET", keys_path("alice"), hub.gateway_token).json() == {"keys": [], "entries": []}


@pytest.mark.parametrize(
    "body,message",
    [
        (b"{not json", "Invalid JSON in body of request"),
        (b"[1, 2]", "expected a JSON object"),
        (b"", "expected a JSON object"),
        (json.dumps({"key": "K"}).encode(), "the field 'name' is missing"),
        (json.dumps({"name": "x"}).encode(), "the field 'key' is missing"),
        (json.dumps({"name": "x", "key": "K", "admin": True}).encode(), "unknown fields ['admin']"),
        (json.dumps({"name": 5, "key": "K"}).encode(), "the key name must be text"),
        (json.dumps({"name": "x", "key": ["K"]}).encode(), "the key must be text"),
        (json.dumps({"name": "", "key": "K"}).encode(), "the key name is empty"),
        (json.dumps({"name": "x", "key": 'command="sh" K'}).encode(), "options before the key (e.g. command=, from=) are not allowed"),
        (json.dumps({"name": "x", "key": "K\nK"}).encode(), "one key per entry: line breaks are not allowed"),
        (json.dumps({"name": "x", "key": "K K"}).encode(), "one key per entry: a second key was found after the first"),
        (json.dumps({"name": "x", "key": "RSA2048"}).encode(), "RSA keys must have at least 3072 bits (this one has 2048)"),
    ],
)
def test_bad_input_is_400_with_reason(hub, body, message):
    token = hub.user_token("carol")
    line = ed_line()
    rsa2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    body = body.replace(b"K", line.encode()).replace(b"RSA2048", rsa2048.encode())
    r = hub.api("POST", keys_path("carol"), token, data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["status"] == 400 and r.json()["message"].startswith(message), r.json()
    assert hub.api("GET", keys_path("carol"), token).json()["keys"] == []


def test_duplicates_and_limit(hub):
    token = hub.user_token("dave")
    line = ed_line()
    assert hub.api("POST", keys_path("dave"), token, json={"name": "a", "key": line}).status_code == 201
    r = hub.api("POST", keys_path("dave"), token, json={"name": "b", "key": line})
    assert r.status_code == 400 and r.json()["message"].startswith("this key is already added (as 'a'")
    r = hub.api("POST", keys_path("dave"), token, json={"name": "a", "key": ed_line()})
    assert r.status_code == 400 and r.json()["message"] == "a key named 'a' already exists: choose another name"
    for name in ("b", "c"):
        assert hub.api("POST", keys_path("dave"), token, json={"name": name, "key": ed_line()}).status_code == 201
    r = hub.api("POST", keys_path("dave"), token, json={"name": "d", "key": ed_line()})
    assert r.status_code == 400
    assert r.json()["message"] == "at most 3 keys per user: delete one before adding another"


def test_who_may_do_what(hub):
    alice = hub.user_token("alice")
    bob = hub.user_token("bob")
    hub.user_token("admin")
    admin = hub.user_token("admin")
    line = ed_line()
    # Another user: 403, whether or not the target exists.
    assert hub.api("GET", keys_path("alice"), bob).status_code == 403
    assert hub.api("GET", keys_path("nobody"), bob).status_code == 403
    assert hub.api("POST", keys_path("alice"), bob, json={"name": "evil", "key": line}).status_code == 403
    r = hub.api("GET", keys_path("alice"), None)
    assert r.status_code == 403 and r.json()["message"] == "Missing or invalid credentials."
    # An admin manages anyone's keys.
    r = hub.api("POST", keys_path("alice"), admin, json={"name": "from-admin", "key": line})
    assert r.status_code == 201, r.text
    assert line in hub.api("GET", keys_path("alice"), alice).json()["keys"]
    assert hub.api("DELETE", f"{keys_path('alice')}/{r.json()['id']}", admin).status_code == 204
    # The gateway reads keys but cannot change them; unknown users are 404 for it.
    assert hub.api("POST", keys_path("alice"), hub.gateway_token, json={"name": "gw", "key": line}).status_code == 403
    assert hub.api("GET", keys_path("nobody"), hub.gateway_token).status_code == 404
    # A token limited like a server's (the one inside the user's container) cannot touch the keys.
    limited = hub.user_token("alice", scopes=["users:activity!user", "read:users:name!user"])
    assert hub.api("GET", keys_path("alice"), limited).status_code == 403
    assert hub.api("POST", keys_path("alice"), limited, json={"name": "x", "key": line}).status_code == 403
    # Users cannot ask for routes; only the gateway can.
    assert hub.api("GET", "devhub/ssh/users/alice/route", alice).status_code == 403


def test_the_gateway_is_refused_users_the_authenticator_refuses(hub):
    mallory = hub.user_token("mallory")  # created before being blocked, with a key
    admin = hub.user_token("admin")
    line = ed_line()
    assert hub.api("POST", keys_path("mallory"), mallory, json={"name": "k", "key": line}).status_code == 201
    for path in (keys_path("mallory"), "devhub/ssh/users/mallory/route"):
        r = hub.api("GET", path, hub.gateway_token)
        assert r.status_code == 403 and r.json()["message"] == "SSH refused: mallory is blocked on this hub", r.text
    assert hub.api("GET", keys_path("mallory"), hub.gateway_token).json()["keys"] == [line]
    # Admins (and the user, were they able to log in) still see the keys, to clean up.
    assert hub.api("GET", keys_path("mallory"), admin).json()["keys"] == [line]
    assert hub.api("GET", keys_path("mallory"), mallory).json()["keys"] == [line]
    assert "SSH refused for 'mallory': mallory is blocked on this hub" in (hub.tmp / "hub.log").read_text()


def test_route_for_running_server_only(hub):
    hub.user_token("erin")
    route = "devhub/ssh/users/erin/route"
    r = hub.api("GET", route, hub.gateway_token)
    assert r.status_code == 409 and r.json()["message"] == "server not running"
    assert hub.api("GET", "devhub/ssh/users/nobody/route", hub.gateway_token).status_code == 404
    hub.host_key_file.unlink(missing_ok=True)
    assert hub.api("POST", "users/erin/server").status_code in (201, 202)
    wait_until(lambda: hub.api("GET", "users/erin").json()["servers"].get("", {}).get("ready"), timeout=30,
               what="erin's server to be ready")
    # Running, but the container has not written its host key yet.
    r = hub.api("GET", route, hub.gateway_token)
    assert r.status_code == 409 and r.json()["message"] == "server starting: its SSH host key is not available yet"
    assert r.headers["Retry-After"] == "1"
    host_key = ed_line("").strip()
    hub.host_key_file.write_text(host_key + "\n")
    r = hub.api("GET", route, hub.gateway_token)
    assert r.status_code == 200, r.text
    assert r.json() == {"host": "10.77.0.2", "port": 2222, "host_key": host_key, "user": "jovyan", "container": "devhub-user-x",
                        "notice": ""}  # no disk soft limit
    # Kept in the spawner state (survives hub restarts).
    state = hub.api("GET", "users/erin").json()["servers"][""]["state"]
    assert state["ssh_host_key"] == host_key
    assert hub.api("DELETE", "users/erin/server").status_code in (202, 204)
    wait_until(lambda: "" not in hub.api("GET", "users/erin").json()["servers"], timeout=30, what="erin's server to stop")
    # What the gateway tells erin's open SSH sessions: who stopped her server (devhub.stops).
    r = hub.api("GET", route, hub.gateway_token)
    assert r.status_code == 409 and r.json()["stop_pending"] is False, r.text
    assert {k: r.json()["last_stop"][k] for k in ("reason", "by")} == {"reason": "stopped by test-admin", "by": "test-admin"}
    # Started again: the old stop is no news.
    assert hub.api("POST", "users/erin/server").status_code in (201, 202)
    wait_until(lambda: hub.api("GET", "users/erin").json()["servers"].get("", {}).get("ready"), timeout=30,
               what="erin's server to be ready again")
    assert hub.api("DELETE", "users/erin/server").status_code in (202, 204)


def test_route_for_named_servers(hub):
    hub.user_token("frank")
    route = "devhub/ssh/users/frank/servers/exp1/route"
    r = hub.api("GET", route, hub.gateway_token)
    assert r.status_code == 404 and r.json()["unknown_server"] is True, r.text
    assert r.json()["message"] == ("frank has no server named 'exp1' (frank's servers: default); "
                                   "create it on the hub's home page first")
    r = hub.api("GET", "devhub/ssh/users/frank/servers/Exp%21/route", hub.gateway_token)
    assert r.status_code == 400 and "invalid server name 'Exp!': use 1-32 characters" in r.json()["message"]
    # A user's own token cannot look up routes, named or not.
    r = hub.api("GET", route, hub.user_token("frank"))
    assert r.status_code == 403 and "look up the SSH route" in r.json()["message"]
    hub.host_key_file.write_text(ed_line("").strip() + "\n")
    assert hub.api("POST", "users/frank/servers/exp1").status_code in (201, 202)
    wait_until(lambda: hub.api("GET", "users/frank").json()["servers"].get("exp1", {}).get("ready"), timeout=30,
               what="frank's server exp1 to be ready")
    r = hub.api("GET", route, hub.gateway_token)
    assert r.status_code == 200 and r.json()["port"] == 2222, r.text
    # The default server is a different server: still stopped.
    assert hub.api("GET", "devhub/ssh/users/frank/route", hub.gateway_token).status_code == 409
    assert hub.api("DELETE", "users/frank/servers/exp1").status_code in (202, 204)
    wait_until(lambda: not hub.api("GET", "users/frank").json()["servers"].get("exp1", {}).get("ready"), timeout=30,
               what="frank's server exp1 to stop")
    r = hub.api("GET", route, hub.gateway_token)  # stopped, but it exists: 409 with why, not 404
    assert r.status_code == 409 and r.json()["last_stop"]["reason"] == "stopped by test-admin", r.text
    assert "last_stop" not in hub.api("GET", "devhub/ssh/users/frank/route", hub.gateway_token).json()
    # MAX_SERVERS_PER_USER=3: the default server and two named ones; a fourth is refused.
    assert hub.api("POST", "users/frank/servers/exp2").status_code in (201, 202)
    r = hub.api("POST", "users/frank/servers/exp3")
    assert r.status_code == 400 and "already has the maximum of 2 named servers" in r.json()["message"], r.text
    assert hub.api("DELETE", "users/frank/servers/exp2").status_code in (202, 204)


def test_deleting_user_deletes_keys(hub):
    token = hub.user_token("frank")
    line = ed_line()
    assert hub.api("POST", keys_path("frank"), token, json={"name": "k", "key": line}).status_code == 201
    assert hub.api("DELETE", "users/frank").status_code == 204
    # A new account with the same name does not inherit them.
    hub.user_token("frank")
    assert hub.api("GET", keys_path("frank"), hub.gateway_token).json() == {"keys": [], "entries": []}
    db = sqlite3.connect(hub.tmp / "data" / "devhub-ssh-keys.sqlite")
    assert db.execute("SELECT count(*) FROM ssh_keys WHERE key = ?", (line,)).fetchone() == (0,)
    db.close()


def test_path_routing_needs_a_recent_login_for_keys_and_tokens(hub):
    """This hub runs SERVER_ROUTING=path: a browser session whose login is older than
    RECENT_LOGIN_SECONDS cannot add keys or create tokens; API tokens can."""
    from tornado.web import create_signed_value

    session = login(hub, "hank")
    xsrf = re.search(r'xsrf_token: "([^"]+)"', session.get(hub.url + "ssh-keys", timeout=10).text).group(1)
    headers = {"X-XSRFToken": xsrf}
    keys_url = hub.url + "api/devhub/ssh/users/hank/keys"
    assert session.post(keys_url, json={"name": "fresh", "key": ed_line()}, headers=headers, timeout=10).status_code == 201
    # The same browser, its login 20 minutes old (the signed cookie as the hub would have made it then).
    secret = (hub.tmp / "data" / "jupyterhub_cookie_secret").read_text().strip()
    old = create_signed_value(bytes.fromhex(secret), "devhub-login-time", "1", clock=lambda: time.time() - 1200)
    session.cookies.set("devhub-login-time", old.decode(), path="/hub/")
    for url, body in ((keys_url, {"name": "late", "key": ed_line()}), (hub.url + "api/users/hank/tokens", {"note": "late"})):
        r = session.post(url, json=body, headers=headers, timeout=10)
        assert r.status_code == 403 and r.json()["message"].startswith("Log in again to "), r.text
    # A script with an API token is not a browser session.
    assert hub.api("POST", "users/hank/tokens", hub.user_token("hank"), json={"note": "script"}).status_code == 201


def test_page_adds_key_with_cookie_and_xsrf(hub):
    session = login(hub, "gina")
    home = session.get(hub.url + "home", timeout=10)
    assert home.status_code == 200
    assert re.search(r'<a id="devhub-ssh-keys-link"[^>]*href="/hub/ssh-keys">SSH keys</a>', home.text)
    page = session.get(hub.url + "ssh-keys", timeout=10)
    assert page.status_code == 200
    assert "Host devhub\n    HostName dev.example.org\n    Port 2022\n    User gina\n    IdentityFile ~/.ssh/id_ed25519" in page.text
    assert "ssh -N -L 6006:localhost:6006 -p 2022 gina@dev.example.org" in page.text
    assert "<code>ssh -p 2022 gina@dev.example.org</code>" in page.text
    assert 'data-keys-url="/hub/api/devhub/ssh/users/gina/keys"' in page.text
    xsrf = re.search(r'xsrf_token: "([^"]+)"', page.text).group(1)
    url = hub.url + "api/devhub/ssh/users/gina/keys"
    line = ed_line("gina@laptop")
    # What the page's script sends: the session cookie plus the XSRF token header.
    r = session.post(url, json={"name": "laptop", "key": line}, headers={"X-XSRFToken": xsrf}, timeout=10)
    assert r.status_code == 201, r.text
    fingerprint = r.json()["fingerprint"]
    # Without the XSRF token the cookie is not enough (cross-site requests).
    r = session.post(url, json={"name": "other", "key": ed_line()}, timeout=10)
    assert r.status_code == 403
    page = session.get(hub.url + "ssh-keys", timeout=10)
    assert "<td>laptop</td>" in page.text and fingerprint in page.text
    # Not logged in: sent to the login page.
    r = requests.get(hub.url + "ssh-keys", timeout=10, allow_redirects=False)
    assert r.status_code == 302 and "/hub/login" in r.headers["Location"]


def test_page_shows_a_host_and_a_command_per_named_server(hub):
    session = login(hub, "ivy")
    for server in ("exp1", "gpu"):
        assert hub.api("POST", f"users/ivy/servers/{server}").status_code in (201, 202)
    page = session.get(hub.url + "ssh-keys", timeout=10)
    assert page.status_code == 200
    blocks = page.text.split('<pre id="ssh-config" class="border rounded p-2">')[1].split("</pre>")[0]
    assert blocks == ("Host devhub\n    HostName dev.example.org\n    Port 2022\n    User ivy\n    IdentityFile ~/.ssh/id_ed25519\n\n"
                      "Host devhub-exp1\n    HostName dev.example.org\n    Port 2022\n    User ivy+exp1\n    IdentityFile ~/.ssh/id_ed25519\n\n"
                      "Host devhub-gpu\n    HostName dev.example.org\n    Port 2022\n    User ivy+gpu\n    IdentityFile ~/.ssh/id_ed25519\n")
    for ssh_user in ("ivy", "ivy+exp1", "ivy+gpu"):
        assert f"<code>ssh -p 2022 {ssh_user}@dev.example.org</code>" in page.text
    for server in ("exp1", "gpu"):
        hub.api("DELETE", f"users/ivy/servers/{server}", json={"remove": True})
