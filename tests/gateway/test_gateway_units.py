"""The gateway's pieces without Docker: HubRouter against a fake hub (exactly the endpoints it
uses), StaticRouter, rate limits, session caps, configuration errors, key files."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "gateway"))

from devhub_gateway import keys  # noqa: E402
from devhub_gateway.config import ConfigError, from_env  # noqa: E402
from devhub_gateway.hub_router import HubRouter  # noqa: E402
from devhub_gateway.limits import FailureLimiter, SessionCounter  # noqa: E402
from devhub_gateway.router import Route, RouteError, StaticRouter  # noqa: E402

TOKEN = "gateway-secret-token"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnaMUWxl4K5yNfR5FS5HewqBN2TxKX5PW48XFwAS6Uy"


class FakeHub:
    """JupyterHub's API as the gateway uses it: /devhub/ssh/users/{name}/keys|route, POST
    /users/{name}/server, GET /users/{name}/server/progress (event stream), POST /users/{name}/activity."""

    def __init__(self):
        self.keys = {"alice": ["ssh-ed25519 AAAA-alice"], "carol": ["ssh-ed25519 AAAA-carol"]}
        self.running = {"alice"}
        self.fail_start = set()
        self.calls: list[tuple[str, str, dict | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _auth(self) -> bool:
                if self.headers.get("Authorization") != f"token {TOKEN}":
                    self._send(403, {"message": "bad token"})
                    return False
                return True

            def do_GET(self):
                hub.calls.append(("GET", self.path, None))
                if not self._auth():
                    return
                parts = self.path.split("/")  # ['', 'hub', 'api', ...]
                if self.path.startswith("/hub/api/devhub/ssh/users/"):
                    name, what = parts[6], parts[7]
                    if name not in hub.keys:
                        return self._send(404, {"message": "no such user"})
                    if what == "keys":
                        return self._send(200, {"keys": hub.keys[name]})
                    if name not in hub.running:
                        return self._send(409, {"message": "not running"})
                    return self._send(200, {"host": f"jupyter-{name}", "port": 2222, "host_key": HOST_KEY})
                if self.path.endswith("/server/progress"):
                    name = parts[4]
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    events = [{"progress": 10, "message": "Pulling image"}, {"progress": 50, "message": "Starting"}]
                    if name in hub.fail_start:
                        events.append({"progress": 100, "failed": True, "message": "out of GPUs"})
                    else:
                        hub.running.add(name)
                        events.append({"progress": 100, "ready": True, "message": "Server ready"})
                    for event in events:
                        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                    return
                self._send(404, {"message": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                hub.calls.append(("POST", self.path, body))
                if not self._auth():
                    return
                if self.path.endswith("/server"):
                    return self._send(202, {})
                if self.path.endswith("/activity"):
                    self.send_response(204)
                    self.end_headers()
                    return
                self._send(404, {"message": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def hub():
    fake = FakeHub()
    yield fake
    fake.close()


def test_hub_router_keys(hub):
    router = HubRouter(hub.url, TOKEN)
    assert asyncio.run(router.authorized_keys("alice")) == ["ssh-ed25519 AAAA-alice"]
    assert asyncio.run(router.authorized_keys("nobody")) == []
    assert asyncio.run(HubRouter(hub.url, "wrong-token").authorized_keys("alice")) == []


def test_hub_router_route_when_running(hub):
    messages = []
    route = asyncio.run(HubRouter(hub.url, TOKEN).route("alice", messages.append))
    assert route == Route("jupyter-alice", 2222, HOST_KEY, "jovyan")
    assert messages == [] and not [c for c in hub.calls if c[0] == "POST"]


def test_hub_router_starts_a_stopped_server_and_reports_progress(hub):
    messages = []
    route = asyncio.run(HubRouter(hub.url, TOKEN).route("carol", messages.append))
    assert route.host == "jupyter-carol"
    assert ("POST", "/hub/api/users/carol/server", {}) in hub.calls
    assert messages[0].startswith("your server is not running")
    assert "[10%] Pulling image" in messages and "[100%] Server ready" in messages


def test_hub_router_start_failure_is_a_clear_route_error(hub):
    hub.fail_start.add("carol")
    with pytest.raises(RouteError, match="failed to start: out of GPUs"):
        asyncio.run(HubRouter(hub.url, TOKEN).route("carol", lambda m: None))


def test_hub_router_unreachable_hub():
    with pytest.raises(RouteError, match="cannot be reached"):
        asyncio.run(HubRouter("http://127.0.0.1:9/hub/api", TOKEN, request_timeout=2).route("alice", print))


def test_hub_router_activity(hub):
    asyncio.run(HubRouter(hub.url, TOKEN).activity("alice"))
    method, path, body = hub.calls[-1]
    assert (method, path) == ("POST", "/hub/api/users/alice/activity")
    assert body["last_activity"].endswith("Z") and body["servers"][""]["last_activity"] == body["last_activity"]


def test_static_router(tmp_path):
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"users": {"alice": {"keys": "k1\nk2\n", "host": "c1", "host_key": HOST_KEY},
                                          "bob": {"keys": ["k3"]}}}))
    router = StaticRouter(path)
    assert asyncio.run(router.authorized_keys("alice")) == ["k1", "k2"]
    assert asyncio.run(router.authorized_keys("zed")) == []
    assert asyncio.run(router.route("alice", print)) == Route("c1", 2222, HOST_KEY, "jovyan")
    with pytest.raises(RouteError, match="no server is configured for bob"):
        asyncio.run(router.route("bob", print))
    yaml_path = tmp_path / "routes.yaml"
    yaml_path.write_text("alice:\n  keys: [k1]\n  host: c2\n  port: 22\n  host_key: " + HOST_KEY + "\n")
    assert asyncio.run(StaticRouter(yaml_path).route("alice", print)).port == 22


def test_failure_limiter_blocks_then_recovers():
    now = [0.0]
    limiter = FailureLimiter(burst=10, window=60, block=120, clock=lambda: now[0])
    for _ in range(9):
        assert not limiter.fail("10.0.0.1")
    assert limiter.fail("10.0.0.1") and limiter.blocked("10.0.0.1")
    assert not limiter.blocked("10.0.0.2")
    now[0] = 119
    assert limiter.blocked("10.0.0.1")
    now[0] = 121
    assert not limiter.blocked("10.0.0.1")


def test_session_counter_cap():
    counter = SessionCounter(cap=2)
    assert counter.try_acquire("a") and counter.try_acquire("a") and not counter.try_acquire("a")
    assert counter.try_acquire("b")
    counter.release("a")
    assert counter.try_acquire("a")


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="JUPYTERHUB_API_URL"):
        from_env({})
    with pytest.raises(ConfigError, match="JUPYTERHUB_API_TOKEN"):
        from_env({"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"})
    with pytest.raises(ConfigError, match="GATEWAY_STATIC_CONFIG"):
        from_env({"GATEWAY_ROUTER": "static"})
    with pytest.raises(ConfigError, match="GATEWAY_PORT"):
        from_env({"GATEWAY_ROUTER": "hub", "GATEWAY_PORT": "99999", "JUPYTERHUB_API_URL": "http://h",
                  "JUPYTERHUB_API_TOKEN": "t"})
    with pytest.raises(ConfigError, match="GATEWAY_ROUTER"):
        from_env({"GATEWAY_ROUTER": "ldap"})
    s = from_env({"JUPYTERHUB_API_URL": "http://hub:8081/hub/api", "JUPYTERHUB_API_TOKEN": "t",
                  "GATEWAY_MAX_SESSIONS_PER_USER": "3", "GATEWAY_ALLOW_REMOTE_FORWARD": "1"})
    assert (s.port, s.max_sessions_per_user, s.allow_remote_forward, s.activity_interval) == (2222, 3, True, 300)
    assert "hub_api_token" not in repr(s)  # the token never reaches logs through repr()


def test_keys_are_generated_once_with_private_modes(tmp_path):
    state = tmp_path / "state"
    host, client = keys.host_key(state), keys.client_key(state)
    assert host.algorithm == b"ssh-ed25519" and client.algorithm == b"ssh-ed25519"
    assert (state / "ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600
    assert (state / "gateway_client_key").stat().st_mode & 0o777 == 0o600
    assert (state / "gateway_client_key.pub").read_text().strip() == keys.public_line(client)
    assert keys.public_line(keys.host_key(state)) == keys.public_line(host)  # persisted, not regenerated
