"""Egress proxies (devhub/egress) and a hardened user server on throwaway networks, outside the
stack: for tests of what the stack does not exercise (chaining to a company proxy) and for bench/."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import docker

from conftest import HARDENED
from stack_support import ROOT, host_local_cas
from support import wait_until

sys.path.insert(0, str(ROOT / "hub"))
from devhub import egress  # noqa: E402

EGRESS_IMAGE = "devhub/egress:latest"
USER_IMAGE = "devhub/dev-gpu:latest"
SQUID_TMPFS = {"/tmp": "", "/var/log/squid": "uid=990", "/run": "uid=990"}


class EgressLab:
    """An outside network (with a way out), an internal user network, egress proxies, user servers.
    Everything it makes is removed by close()."""

    def __init__(self, client: docker.DockerClient, prefix: str = "devhub-test-egress"):
        self.client = client
        self.prefix = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.made: list = []
        self.outside = self._keep(client.networks.create(f"{self.prefix}-out", driver="bridge"))
        self.inside = self._keep(client.networks.create(f"{self.prefix}-user", driver="bridge", internal=True))

    def _keep(self, thing):
        self.made.append(thing)
        return thing

    def proxy(self, name: str, environment: dict | None = None, user_alias: str | None = None):
        """An egress proxy named <prefix>-<name> on the outside network (and on the user network as
        `user_alias`); returns (container, its credential key)."""
        keys = self._keep(self.client.volumes.create(f"{self.prefix}-{name}-key"))
        key = self.client.containers.run(
            EGRESS_IMAGE, user="0:0", remove=True, volumes={keys.name: {"bind": "/k", "mode": "rw"}},
            entrypoint=["sh", "-c", "umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' > /k/egress_key; "
                        "chown 990:990 /k/egress_key; cat /k/egress_key"]).decode().strip()
        container = self._keep(self.client.containers.run(
            EGRESS_IMAGE, name=f"{self.prefix}-{name}", detach=True, network=self.outside.name, read_only=True,
            cap_drop=["ALL"], environment=environment or {}, tmpfs=SQUID_TMPFS,
            volumes={keys.name: {"bind": "/srv/egress-secret", "mode": "ro"}}))
        if user_alias:
            self.inside.connect(container, aliases=[user_alias])
        wait_until(lambda: container.exec_run(["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', 3128), 2)"])
                   .exit_code == 0, 60, interval=0.2, what=f"egress proxy {name} to listen")
        return container, key

    def user_server(self, proxy_key: str, proxy_user: str):
        """A hardened user server on the user network with the proxy settings the spawner gives
        (and this host's local CAs as USER_EXTRA_CA), once its CA bundle is written."""
        env = egress.user_environment(egress.Policy(), proxy_key, proxy_user)
        ca = host_local_cas()
        if ca:
            env["DEVHUB_EXTRA_CA"] = Path(ca).read_text()
        home = self._keep(self.client.volumes.create(f"{self.prefix}-home-{proxy_user}"))
        user = self._keep(self.client.containers.run(
            USER_IMAGE, detach=True, network=self.inside.name, environment=env,
            volumes={home.name: {"bind": "/home/jovyan", "mode": "rw"}}, **HARDENED))
        wait_until(lambda: user.exec_run(["test", "-s", "/run/devhub/ca-certificates.crt"]).exit_code == 0, 60,
                   what="the user server's CA bundle")
        return user

    def close(self) -> None:
        for thing in reversed(self.made):
            try:
                if isinstance(thing, docker.models.containers.Container):
                    thing.remove(force=True, v=True)
                elif isinstance(thing, docker.models.volumes.Volume):
                    thing.remove(force=True)
                else:
                    thing.remove()
            except docker.errors.APIError:
                pass
        self.made.clear()


def log_lines(container) -> list[dict]:
    """The JSON access-log lines of an egress proxy."""
    lines = []
    for line in container.logs(stdout=True, stderr=False).decode(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines
