"""The SSH keys REST API, route API and page, through a real JupyterHub process started with devhub's
configuration (devhub.config.configure). Only what needs outside resources is replaced: the proxy
(in memory), the spawner (a tiny HTTP server in the hub process that stands in for the user
container, with the host key in a file) and the authenticator (JupyterHub's DummyAuthenticator, so
a browser login can be done with a form post)."""

import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-" + "a" * 40

TEST_CONFIG = '''
import json, os
from tornado import httpserver, netutil, web
from traitlets import Any, Unicode
from jupyterhub.proxy import Proxy
from jupyterhub.spawner import Spawner
from devhub import config, settings
from devhub.spawner import SshHostKeyState, delete_user_ssh_keys

class MemoryProxy(Proxy):
    routes = {}
    async def start(self): pass
    def stop(self): pass
    async def add_route(self, routespec, target, data):
        self.routes[routespec] = {"routespec": routespec, "target": target, "data": data}
    async def delete_route(self, routespec):
        self.routes.pop(routespec, None)
    async def get_all_routes(self):
        return dict(self.routes)

class Ok(web.RequestHandler):
    def get(self, *args):
        self.write("ok")

class FakeSshSpawner(SshHostKeyState, Spawner):
    """Stands in for DevhubSpawner: an HTTP server in the hub; the host key comes from a file."""
    ssh_key_store = Any().tag(config=True)
    host_key_file = Unicode().tag(config=True)
    _http = None
    async def start(self):
        self.ssh_host_key = ""
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        self._http = httpserver.HTTPServer(web.Application([(r"(.*)", Ok)]))
        self._http.add_sockets(sockets)
        return ("127.0.0.1", sockets[0].getsockname()[1])
    async def stop(self, now=False):
        if self._http:
            self._http.stop()
            self._http = None
    async def poll(self):
        return None if self._http else 0
    async def ssh_route(self):
        if not self._http:
            return None
        if not self.ssh_host_key and os.path.exists(self.host_key_file):
            self.ssh_host_key = open(self.host_key_file).read().strip()
        return {"host": "10.77.0.2", "port": 2222, "host_key": self.ssh_host_key, "user": "jovyan", "container": "devhub-user-x"}
    async def delete_forever(self):
        delete_user_ssh_keys(self)

config.configure(c, settings.load(), __file__)
c.JupyterHub.proxy_class = MemoryProxy
c.JupyterHub.spawner_class = FakeSshSpawner
c.FakeSshSpawner.ssh_key_store = c.DevhubSpawner.ssh_key_store
c.FakeSshSpawner.host_key_file = os.environ["TEST_HOST_KEY_FILE"]
c.JupyterHub.authenticator_class = "dummy"
from devhub import recent_login  # path routing here: browser logins are timed as devhub's own are
c.DummyAuthenticator.post_auth_hook = lambda authenticator, handler, model: recent_login.mark_login(handler) or model
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
c.Authenticator.blocked_users = {"mallory"}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ["TEST_HUB_PORT"])
c.JupyterHub.hub_connect_ip = "127.0.0.1"
c.JupyterHub.bind_url = "http://127.0.0.1:%s" % os.environ["TEST_PROXY_PORT"]
c.JupyterHub.public_url = ""  # this test talks plain http to the hub: its cookies must not be Secure-only
c.JupyterHub.services.append({"name": "test-admin", "api_token": os.environ["TEST_ADMIN_TOKEN"]})
c.JupyterHub.load_roles.append({"name": "test-admin", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["test-admin"]})
'''


def ed_line(comment="me@laptop"):
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " " + comment


class Hub:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hub/"
        self.host_key_file = tmp / "host_key.pub"
        (tmp / "sshgw-secret").mkdir(mode=0o700)
        (tmp / "jupyterhub_config.py").write_text(TEST_CONFIG)
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "PYTHONPATH": str(ROOT / "hub"),
            "DATA_DIR": str(tmp / "data"),
            "PROXY_AUTH_TOKEN_FILE": str(tmp / "proxy" / "auth_token"),
            "SSH_GATEWAY_TOKEN_FILE": str(tmp / "sshgw-secret" / "api_token"),
            "SSH_GATEWAY_CLIENT_KEY_FILE": str(tmp / "sshgw-state" / "gateway_client_key.pub"),
            "SSH_MAX_KEYS_PER_USER": "3",
            "PUBLIC_URL": "https://dev.example.org",
            # Reached here over plain http at 127.0.0.1, not at per-user origins under PUBLIC_URL.
            "SERVER_ROUTING": "path",
            "SSH_PORT": "2022",
            "IDLE_CULL_TIMEOUT": "0",
            "HUB_DISK_RESERVE": "0",
            "TEST_HUB_PORT": str(self.port),
            "TEST_PROXY_PORT": str(free_port()),
            "TEST_ADMIN_TOKEN": ADMIN_TOKEN,
            "TEST_HOST_KEY_FILE": str(self.host_key_file),
        }
        self.log = open(tmp / "hub.log", "w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(tmp / "jupyterhub_config.py")],
            env=env, cwd=tmp, stdout=self.log, stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._up_or_exited, timeout=60, what="the hub to answer /hub/health")
        except TimeoutError:
            self.stop()
            raise AssertionError("the hub did not start:\n" + (tmp / "hub.log").read_text()[-5000:]) from None
        if self.process.poll() is not None:
            self.log.close()
            raise AssertionError("the hub exited:\n" + (tmp / "hub.log").read_text()[-5000:])
        self.gateway_token = (tmp / "sshgw-secret" / "api_token").read_text().strip()

    def _up_or_exited(self):
        return self.process.poll() is not None or requests.get(self.url + "health", timeout=2).status_code == 200

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def api(self, method, path, token=ADMIN_TOKEN, headers=None, **kwargs):
        headers = ({"Authorization": f"token {token}"} if token else {}) | (headers or {})
        return requests.request(method, self.url + "api/" + path, headers=headers, timeout=10, **kwargs)

    def user_token(self, name, scopes=None):
        r = self.api("POST", f"users/{name}")
        assert r.status_code in (201, 409), r.text
        body = {"note": "test"} | ({"scopes": scopes} if scopes is not None else {})
        r = self.api("POST", f"users/{name}/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.json()["token"]


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


def login(hub, name):
    session = requests.Session()
    page = session.get(hub.url + "login", timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    r = session.post(hub.url + "login", data={"username": name, "password": "pw", "_xsrf": xsrf}, timeout=10,
                     allow_redirects=False)
    assert r.status_code == 302, r.text
    return session


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
