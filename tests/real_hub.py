"""A real JupyterHub process started with devhub's configuration (devhub.config.configure), for the
tests of devhub's hub handlers and of the gateway's HubRouter against them. Only what needs outside
resources is replaced: the proxy (in memory), the spawner (a tiny HTTP server in the hub process that
stands in for the user container, with the host key in a file) and the authenticator (JupyterHub's
DummyAuthenticator, so a browser login can be done with a form post)."""

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "test-admin-" + "a" * 40

TEST_CONFIG = '''
import asyncio, json, os
from tornado import httpserver, netutil, web
from traitlets import Any, Unicode
from jupyterhub.proxy import Proxy
from jupyterhub.spawner import Spawner
from devhub import config, settings
from jupyterhub.auth import DummyAuthenticator
from devhub.deletion import with_user_deletion
from devhub.spawner import SshHostKeyState

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

def _wait_for_gate(path):
    with open(path, "rb") as gate:  # blocks until the test opens the FIFO to write
        gate.read()

class FakeSshSpawner(SshHostKeyState, Spawner):
    """Stands in for DevhubSpawner: an HTTP server in the hub; the host key comes from a file."""
    host_key_file = Unicode().tag(config=True)
    _http = None
    async def start(self):
        self.ssh_host_key = ""
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        self._http = httpserver.HTTPServer(web.Application([(r"(.*)", Ok)]))
        self._http.add_sockets(sockets)
        return ("127.0.0.1", sockets[0].getsockname()[1])
    async def stop(self, now=False):
        # While the test's gate (a FIFO) exists, the stop stays pending, as a container that is slow
        # to stop, until the test writes to the gate (RealHub.open_stop_gate).
        gate = os.environ["TEST_STOP_GATE"]
        if os.path.exists(gate):
            await asyncio.to_thread(_wait_for_gate, gate)
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

config.configure(c, settings.load(), __file__)
c.JupyterHub.proxy_class = MemoryProxy
c.JupyterHub.spawner_class = FakeSshSpawner
c.FakeSshSpawner.host_key_file = os.environ["TEST_HOST_KEY_FILE"]
class DummyWithExpiry(DummyAuthenticator):
    """Logins of users named expired-* cannot be refreshed, as when the IdP has forgotten their tokens."""
    async def refresh_user(self, user, handler=None, **kwargs):
        return not user.name.startswith("expired-")

c.JupyterHub.authenticator_class = with_user_deletion(DummyWithExpiry)  # devhub's deletion hook, as configured
c.Authenticator.refresh_pre_spawn = True
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
        self.stop_gate = tmp / "stop-gate"  # while this FIFO exists, stops stay pending (hold_stops)
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
            "TEST_STOP_GATE": str(self.stop_gate),
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

    def hold_stops(self):
        """From now on a server's stop stays pending until release_stops()."""
        os.mkfifo(self.stop_gate)

    def release_stops(self):
        """Let a held stop finish (if one waits at the gate) and stop holding new ones."""
        if not self.stop_gate.exists():
            return
        try:  # non-blocking: with no stop waiting there is no reader, and nothing to release
            os.close(os.open(self.stop_gate, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        self.stop_gate.unlink()

    def api(self, method, path, token=ADMIN_TOKEN, headers=None, timeout=10, **kwargs):
        headers = ({"Authorization": f"token {token}"} if token else {}) | (headers or {})
        return requests.request(method, self.url + "api/" + path, headers=headers, timeout=timeout, **kwargs)

    def user_token(self, name, scopes=None):
        r = self.api("POST", f"users/{name}")
        assert r.status_code in (201, 409), r.text
        body = {"note": "test"} | ({"scopes": scopes} if scopes is not None else {})
        r = self.api("POST", f"users/{name}/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.json()["token"]


def login(hub, name):
    session = requests.Session()
    page = session.get(hub.url + "login", timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    r = session.post(hub.url + "login", data={"username": name, "password": "pw", "_xsrf": xsrf}, timeout=10,
                     allow_redirects=False)
    assert r.status_code == 302, r.text
    return session
