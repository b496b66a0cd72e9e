"""What an administrator types, as commands, in a fresh clone without .env: `make up`, then plain
`docker compose ps|logs|exec` with no extra variables, `make status` and `pip` in a running server,
`make down` (with and without .env) leaving no user server or user network behind.

It runs the stack under compose's default project name `devhub` (what `make up` uses), on free
loopback ports; it refuses to run where a devhub stack is already running rather than take it over.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stack_support import LOCAL_CAS, ROOT, Stack, start_server
from support import free_port

PACKAGE, VERSION = "tabulate", "0.9.0"  # small, pure Python, not in the image
USER = "mkcheck"  # a demo user of its own (DEMO_EXTRA_USERS), so no real user's home is touched
PREFIX = "devhub-user-"


def run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout)


def clean_env() -> dict:
    """The environment of a person's shell: none of the stack's variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_GID", "DEMO_"))}


@pytest.fixture(scope="module")
def clone(tmp_path_factory, docker_client):
    running = docker_client.containers.list(filters={"label": "com.docker.compose.project=devhub"})
    assert not running, f"a devhub stack is running on this machine ({[c.name for c in running]}); `make down` it first"
    path = tmp_path_factory.mktemp("fresh") / "devhub"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True)
    assert not (path / ".env").exists()
    yield path
    run(["make", "down"], path)
    for volume in docker_client.volumes.list(filters={"name": f"devhub-home-{USER}"}):
        volume.remove(force=True)


GATEWAY_STATE = "/var/lib/devhub-sshgw"
MAKE_KEYS = ("from pathlib import Path; from devhub_gateway import keys; "
             "keys.host_key(Path('/s')); keys.client_key(Path('/s'))")


def gateway_state_from_before_its_own_uid(docker_client) -> str:
    """The gateway's state volume as an install from before the gateway ran as uid 991 has it (keys
    owned by uid 990); returns the host key users have pinned."""
    out = docker_client.containers.run(
        "devhub/sshgw:latest", user="0", remove=True, volumes={"devhub_sshgw-state": {"bind": "/s", "mode": "rw"}},
        entrypoint=["sh", "-c", f"python3 -c \"{MAKE_KEYS}\" && chown -R 990:990 /s && cat /s/ssh_host_ed25519_key.pub"])
    return out.decode().strip()


def test_make_up_then_plain_compose_status_and_make_down(clone, docker_client):
    ports = {"HTTPS_PORT": str(free_port()), "HTTP_PORT": str(free_port()), "SSH_PORT": str(free_port())}
    pinned_host_key = gateway_state_from_before_its_own_uid(docker_client)
    up = run(["make", "up"], clone, env={**clean_env(), **ports, "DEMO_EXTRA_USERS": USER})
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "devhub is running at https://devhub.localhost:" in up.stderr

    # Plain compose in the checkout, with no variables set: what make up computed is in .env.
    ps = run(["docker", "compose", "ps", "--format", "{{.Service}} {{.State}}"], clone)
    assert ps.returncode == 0, ps.stderr
    assert {"hub running", "proxy running", "nginx running", "sshgw running", "egress running", "oidc running"} <= set(ps.stdout.splitlines())
    logs = run(["docker", "compose", "logs", "--no-color", "hub"], clone)
    assert logs.returncode == 0 and "JupyterHub is now running" in logs.stdout, logs.stderr[-2000:]
    exec_ = run(["docker", "compose", "exec", "-T", "hub", "python", "-c", "print('inside')"], clone)
    assert exec_.returncode == 0 and exec_.stdout.strip() == "inside", exec_.stderr
    assert (clone / ".env").stat().st_mode & 0o077 == 0  # it may hold OAuth secrets: owner only
    # The upgrade made the gateway's keys its own (it started: up --wait), and kept its host key.
    state = run(["docker", "compose", "exec", "-T", "sshgw", "sh", "-c",
                 f"stat -c %u {GATEWAY_STATE}/ssh_host_ed25519_key && cat {GATEWAY_STATE}/ssh_host_ed25519_key.pub"], clone)
    assert state.stdout.split("\n", 1) == ["991", pinned_host_key + "\n"], state.stdout + state.stderr

    # A user's server shows in `make status`.
    stack = Stack(int(ports["HTTPS_PORT"]), int(ports["HTTP_PORT"]), int(ports["SSH_PORT"]), clean_env(), project="devhub")
    session = stack.login(USER)
    start_server(stack, session.token(), USER)
    status = run(["make", "status"], clone)
    assert status.returncode == 0, status.stderr
    row = next(line for line in status.stdout.splitlines() if line.startswith(USER + " "))
    assert f"{PREFIX}{USER}" in row and " none " in row and ("MiB" in row or "GiB" in row), status.stdout

    # pip in the server reaches PyPI with make up's defaults. Where this host's administrator added
    # CAs to its trust store (a TLS-inspecting proxy's, as on the build machines), make up gave them
    # to user servers and said so; without them pip fails there with CERTIFICATE_VERIFY_FAILED.
    added = "".join(p.read_text() for p in sorted(LOCAL_CAS.rglob("*.crt"))) if LOCAL_CAS.is_dir() else ""
    if added.count("-BEGIN CERTIFICATE-"):
        assert (f"users' servers trust this host's own CAs ({added.count('-BEGIN CERTIFICATE-')} from {LOCAL_CAS}"
                in up.stderr), up.stderr
    pip = docker_client.containers.get(f"{PREFIX}{USER}").exec_run(
        ["pip", "download", "--no-deps", "--no-cache-dir", "-d", "/tmp/dl", f"{PACKAGE}=={VERSION}"], user="1000")
    assert pip.exit_code == 0 and f"Saved /tmp/dl/{PACKAGE}-{VERSION}" in pip.output.decode(), pip.output.decode()[-2000:]

    # make down without .env: exits 0 and leaves no user server or network.
    (clone / ".env").unlink()
    down = run(["make", "down"], clone)
    assert down.returncode == 0, down.stderr
    assert "1 user server(s)" in down.stderr
    assert not docker_client.containers.list(all=True, filters={"name": f"^{PREFIX}{USER}"})
    assert not [n for n in docker_client.networks.list(names=[f"{PREFIX}{USER}"]) if n.name == f"{PREFIX}{USER}"]
    assert not docker_client.containers.list(filters={"label": "com.docker.compose.project=devhub"})
