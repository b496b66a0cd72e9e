"""Driving the real stack from docker-compose.yml: compose, demo logins, the hub REST API.

Used by tests/stack (fixtures in tests/stack/conftest.py) and bench/stack_bench.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests
import urllib3
import websocket

from support import SshTarget, exec_out, free_port, make_keypair, wait_until
from devhub import names

ROOT = Path(__file__).resolve().parents[1]
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


@dataclass
class Stack:
    https_port: int
    http_port: int
    ssh_port: int
    env: dict
    project: str = "devhubtest"
    overlay: str = "tests/stack/compose.test.yml"

    host: str = "devhub.localhost"  # compose's default SERVER_NAME; users' servers are on <user>.<host>

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.https_port}"

    def server_url(self, user: str) -> str:
        """The base URL of a user's server: on its own origin, unless the stack runs SERVER_ROUTING=path."""
        if self.env.get("SERVER_ROUTING") == "path":
            return f"{self.url}/user/{user}"
        return f"https://{user}.{self.host}:{self.https_port}/user/{user}"

    @property
    def prometheus_url(self) -> str:
        """The monitoring profile's Prometheus, on the host's loopback."""
        return f"http://127.0.0.1:{self.env['PROMETHEUS_PORT']}"

    def compose(self, *args: str, check: bool = True, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
        """`docker compose ...` on this stack; `env`: extra compose variables for this call only."""
        cmd = ["docker", "compose", "-p", self.project, "-f", "docker-compose.yml", "-f", self.overlay, *args]
        result = subprocess.run(cmd, cwd=ROOT, env={**self.env, **(env or {})}, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def wait_for_hub(self, what: str) -> None:
        wait_until(lambda: requests.get(f"{self.url}/hub/health", verify=False, timeout=5).status_code == 200,
                   120, interval=0.5, what=what)

    def restart_hub(self) -> None:
        """`docker compose restart hub`, returning once the hub answers through nginx again."""
        self.compose("restart", "hub")
        self.wait_for_hub("the hub to answer after its restart")

    def recreate_hub(self, **env: str) -> None:
        """Recreate the hub container with extra compose variables (none: the stack's own), returning
        once it answers through nginx."""
        self.compose("up", "--detach", "--no-deps", "--force-recreate", "--wait", "hub", env=env)
        self.wait_for_hub("the hub to answer after its re-creation")

    def container(self, docker_client, service: str):
        return docker_client.containers.get(self.compose("ps", "-q", service).stdout.strip())

    def login(self, user: str) -> "HubSession":
        """Log in through the demo identity provider like a browser does; returns the session."""
        session = requests.Session()
        session.verify = False
        session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify=False
        page = session.get(f"{self.url}/hub/oauth_login?next=", timeout=30)
        assert "/demo-idp/oauth2/authorize" in page.url, page.url
        done = session.post(page.url, data={"sub": user}, timeout=120)
        # Logged in: the hub's pages, or already the user's server (the hub spawns it after login).
        assert done.status_code == 200 and "/hub/login" not in done.url, (done.status_code, done.url)
        assert done.url.startswith(f"{self.url}/hub/") or f"/user/{quote(user, safe='')}/" in done.url, done.url
        return HubSession(self, user, session)


@dataclass
class HubSession:
    stack: Stack
    user: str
    session: requests.Session

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        xsrf = self.session.cookies.get("_xsrf", path="/hub/")
        headers = kwargs.pop("headers", {})
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        return self.session.request(method, f"{self.stack.url}/hub/api{path}", headers=headers, timeout=60, **kwargs)

    def token(self) -> str:
        response = self.api("POST", f"/users/{self.user}/tokens", json={"note": "tests", "expires_in": 3600})
        assert response.status_code in (200, 201), response.text
        return response.json()["token"]


OVERRIDES = "/srv/jupyterhub/jupyterhub_config.d"  # DATA_DIR/jupyterhub_config.d in the hub


@contextlib.contextmanager
def hub_override(stack, docker_client, name: str, python: str):
    """An admin's override file in DATA_DIR/jupyterhub_config.d, in force from a hub restart until
    the block ends (removed, restarted again)."""
    hub = stack.container(docker_client, "hub")
    exec_out(hub, ["sh", "-c", f"mkdir -p {OVERRIDES} && printf '%s\\n' {shlex.quote(python)} > {OVERRIDES}/{name}"])
    stack.restart_hub()
    try:
        yield
    finally:
        exec_out(stack.container(docker_client, "hub"), ["rm", "-f", f"{OVERRIDES}/{name}"])
        stack.restart_hub()


def audit_lines(stack: Stack) -> list[dict]:
    """The hub's audit lines (devhub.audit: one JSON object per line of its log), oldest first."""
    lines = []
    for line in stack.compose("logs", "--no-color", "--no-log-prefix", "hub").stdout.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))  # every audit line is one whole JSON object
    return lines


def hub_api(stack: Stack, token: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{stack.url}/hub/api{path}", headers={"Authorization": f"token {token}"},
                            verify=False, timeout=60, **kwargs)


def server_path(user: str, server: str = "") -> str:
    """The REST API path of a user's default server, or of a named one."""
    return f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"


def start_server(stack: Stack, token: str, user: str, timeout: float = 180, *, server: str = "",
                 options: dict | None = None, interval: float = 0.5) -> dict:
    response = hub_api(stack, token, "POST", server_path(user, server), **({"json": options} if options else {}))
    assert response.status_code in (201, 202, 400), response.text  # 400: already running
    return wait_until(lambda: (s := hub_api(stack, token, "GET", f"/users/{user}").json()["servers"].get(server, {})).get("ready") and s,
                      timeout, interval=interval, what=f"{user}'s server {server!r} to be ready")


def stop_server(stack: Stack, token: str, user: str, timeout: float = 120, *, server: str = "") -> None:
    response = hub_api(stack, token, "DELETE", server_path(user, server))
    assert response.status_code in (202, 204), response.text
    def stopped() -> bool:
        model = hub_api(stack, token, "GET", f"/users/{user}").json()["servers"].get(server, {})
        return not model.get("ready") and not model.get("pending")

    wait_until(stopped, timeout, interval=0.5, what=f"{user}'s server {server!r} to stop")


def kernel_execute(ws, code: str, timeout: float = 60) -> str:
    """Run code in a kernel over its websocket (Jupyter messaging protocol); return its stdout."""
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False},
    }))
    ws.settimeout(timeout)
    out = []
    while True:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] in ("stream", "error"):
            out.append(msg["content"].get("text") or "\n".join(msg["content"].get("traceback", [])))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


def kernel_socket(stack: Stack, token: str, user: str, kernel_id: str) -> websocket.WebSocket:
    url = stack.server_url(user).replace("https://", "wss://", 1) + f"/api/kernels/{kernel_id}/channels"
    return websocket.create_connection(url, header=[f"Authorization: token {token}"],
                                       sslopt={"cert_reqs": ssl.CERT_NONE}, timeout=60)


def run_in_new_kernel(stack: Stack, token: str, user: str, code: str, timeout: float = 120) -> str:
    """Start a fresh kernel in the user's running server (its Jupyter API), run code, shut it down."""
    api = f"{stack.server_url(user)}/api/kernels"
    headers = {"Authorization": f"token {token}"}
    kernel = requests.post(api, headers=headers, json={}, verify=False, timeout=60)
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    ws = kernel_socket(stack, token, user, kernel_id)
    try:
        return kernel_execute(ws, code, timeout)
    finally:
        ws.close()
        requests.delete(f"{api}/{kernel_id}", headers=headers, verify=False, timeout=60)


def user_container(docker_client, user: str, prefix: str = "devhubtest-user-", *, server: str = ""):
    return docker_client.containers.get(names.ServerObjects(user=user, server=server, network_prefix=prefix).container)


def cleanup_hub_objects(docker_client, project: str = "devhubtest") -> None:
    """What the hub made (user containers, networks, home volumes) is outside compose: remove it."""
    for c in docker_client.containers.list(all=True, filters={"label": "devhub.role=user-server"}):
        if c.name.startswith(f"{project}-user-"):
            c.remove(force=True)
    for n in docker_client.networks.list(names=[f"{project}-user-"]):
        if n.name.startswith(f"{project}-user-"):
            n.reload()
            for c in n.containers:
                n.disconnect(c, force=True)
            n.remove()
    for v in docker_client.volumes.list():
        if v.name.startswith((f"{project}-home-", f"{project}-datasets")):
            v.remove(force=True)




LOCAL_CAS = Path("/usr/local/share/ca-certificates")
BRACE_USER = "brace{0}"


def host_addresses() -> str:
    """The host's own addresses, as `make up` passes them to the egress proxy (never reachable)."""
    return subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.strip()


def host_local_cas(directory: Path = ROOT / "tests" / "artifacts") -> str:
    """The CAs this host added to its own trust store (a TLS-inspecting proxy's, here), as one PEM
    file for USER_EXTRA_CA, as `make up` gives them when USER_EXTRA_CA is unset (user_extra_ca in
    scripts/stack-env.sh); "" when it has none (then no extra CA is needed)."""
    pems = [p.read_text() for p in sorted(LOCAL_CAS.rglob("*.crt"))] if LOCAL_CAS.is_dir() else []
    if not pems:
        return ""
    directory.mkdir(exist_ok=True)
    path = directory / "user-extra-ca.pem"
    path.write_text("".join(pem if pem.endswith("\n") else pem + "\n" for pem in pems))
    return str(path)


def stack_env(https_port: int, http_port: int, ssh_port: int, **extra: str) -> dict:
    """Environment for `docker compose` running the demo stack on loopback-only ports."""
    env = dict(os.environ)
    env.update({
        "HTTPS_PORT": str(https_port), "HTTP_PORT": str(http_port), "BIND_ADDRESS": "127.0.0.1",
        "SSH_PORT": str(ssh_port), "SSH_BIND_ADDRESS": "127.0.0.1",
        "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid), "COMPOSE_PROFILES": "demo,monitoring",
        "PROMETHEUS_PORT": str(free_port()),
        "DEMO_IDP_UPSTREAM": "oidc:8080", "AUTH_PROVIDER": "demo",
        "EGRESS_HOST_ADDRESSES": host_addresses(), "USER_EXTRA_CA": host_local_cas(),
        # A demo user whose name DockerSpawner's str.format would eat (test_restart_and_names.py).
        "DEMO_EXTRA_USERS": BRACE_USER, **extra,
    })
    return env


class LiveSession:
    """`ssh user@host` running a long command, as someone working in a terminal."""

    def __init__(self, ssh: SshTarget, command: str = "exec sleep 900"):
        self.process = subprocess.Popen([*ssh.ssh_args(), f"echo ready; {command}"], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.ready = threading.Event()
        threading.Thread(target=lambda: self.process.stdout.readline() and self.ready.set(), daemon=True).start()
        wait_until(self.ready.is_set, 240, interval=0.2, what="the SSH session to be up")

    def ended_within(self, seconds: float) -> tuple[float, str]:
        """Seconds until the session ended (it must, within `seconds`) and its stderr."""
        started = time.monotonic()
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the SSH session was still open after {seconds} s")
        return time.monotonic() - started, self.process.stderr.read()


def add_key(stack, token: str, user: str, tmp_path, name: str):
    name = f"{name}-{uuid.uuid4().hex[:6]}"
    key = make_keypair(tmp_path, name=name)
    added = hub_api(stack, token, "POST", f"/devhub/ssh/users/{user}/keys", json={"name": name, "key": key.public_line})
    assert added.status_code == 201, added.text
    return key, added.json()["id"]
