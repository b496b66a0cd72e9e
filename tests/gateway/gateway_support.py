"""The gateway test fixtures: a user-defined Docker network, two hardened user containers that trust
the gateway's client key, a static routing file for several users, and gateway containers run with
the resource limits of the compose file's sshgw service."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import UserContainer, start_user_container
from fake_hub import TOKEN, FakeHub
from support import KeyPair, SshTarget, TrackedResources, exec_out, host_port, make_keypair, wait_healthy

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def compose_limits() -> dict:
    """mem_limit, pids_limit and ulimits of the sshgw service, as docker-py run() arguments."""
    service = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["sshgw"]
    nofile = service["ulimits"]["nofile"]
    soft, hard = (nofile["soft"], nofile["hard"]) if isinstance(nofile, dict) else (nofile, nofile)
    import docker.types

    return dict(mem_limit=service["mem_limit"], pids_limit=service["pids_limit"],
                ulimits=[docker.types.Ulimit(name="nofile", soft=int(soft), hard=int(hard))])


GATEWAY_IMAGE = os.environ.get("DEVHUB_GATEWAY_IMAGE", "devhub/sshgw:latest")
METRICS_PORT = 9101
STATE = "/var/lib/devhub-sshgw"
CONFIG = "/etc/devhub-sshgw/static.json"
HOST_KEY_PUB = "/home/jovyan/.local/share/devhub/ssh/ssh_host_ed25519_key.pub"
WRONG_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnaMUWxl4K5yNfR5FS5HewqBN2TxKX5PW48XFwAS6Uy wrong"
# Options the gateway container runs with: read-only root, no capabilities, the compose limits.
GATEWAY_HARDENED = dict(read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"], **compose_limits())


@dataclass
class GatewayEnv:
    tracked: TrackedResources
    network: str
    state_volume: str
    config_path: Path
    client_key: str
    users: dict[str, KeyPair]
    containers: dict[str, UserContainer]
    routes: dict[str, str] = field(default_factory=dict)  # user -> container name

    def start_gateway(self, environment: dict | None = None, wait: bool = True, metrics: bool = False):
        """A gateway container; with `metrics`, /metrics on port 9101 of a network alias of its own
        (as compose's `sshgw-metrics` on the hub network), published on the host's loopback."""
        name = f"devhub-test-sshgw-{uuid.uuid4().hex[:8]}"
        env = {"GATEWAY_ROUTER": "static", "GATEWAY_STATIC_CONFIG": CONFIG, "GATEWAY_AUTH_FAILURES": "100",
               **({"GATEWAY_METRICS_LISTEN": f"{name}-metrics:{METRICS_PORT}"} if metrics else {}),
               **(environment or {})}
        ports = {"2222/tcp": ("127.0.0.1", None), **({f"{METRICS_PORT}/tcp": ("127.0.0.1", None)} if metrics else {})}
        endpoint = self.tracked.client.api.create_endpoint_config(aliases=[f"{name}-metrics"] if metrics else None)
        container = self.tracked.run(
            GATEWAY_IMAGE, name=name, environment=env, network=self.network,
            networking_config={self.network: endpoint}, ports=ports,
            volumes={self.state_volume: {"bind": STATE, "mode": "rw"},
                     str(self.config_path): {"bind": CONFIG, "mode": "ro"}},
            **GATEWAY_HARDENED)
        if wait:
            wait_healthy(container, timeout=60)
        return container

    def ssh(self, gateway, user: str, key: KeyPair | None = None) -> SshTarget:
        return SshTarget(host_port(gateway, "2222/tcp"), (key or self.users[user]).private, user=user)


def container_host_key(uc: UserContainer) -> str:
    return exec_out(uc.container, ["cat", HOST_KEY_PUB]).strip()


@pytest.fixture(scope="module")
def gateway_image(docker_client) -> str:
    docker_client.images.get(GATEWAY_IMAGE)  # raises ImageNotFound: run `make image-sshgw`
    return GATEWAY_IMAGE


@pytest.fixture(scope="module")
def gw_env(docker_client, module_resources, gateway_image, image, tmp_path_factory) -> GatewayEnv:
    """Network + state volume + two user containers + a static routing file for these users:

    alice, u1, u3, u5, mallory (wrong host key) -> container A; bob, u2, u4 -> container B;
    ghost: keys but no server; alice's named server exp1 (login alice+exp1) -> container B.
    """
    network = docker_client.networks.create(f"devhub-test-gwnet-{uuid.uuid4().hex[:8]}", driver="bridge",
                                            labels={"devhub.test": "1"})
    try:
        state = module_resources.volume("devhub-test-sshgw-state")
        # The gateway's client key is generated in its state volume by the image's own code.
        print_client_key = ("from devhub_gateway import config, keys; "
                            "print(keys.public_line(keys.client_key(config.only('GATEWAY_STATE_DIR')['state_dir'])))")
        client_key = module_resources.client.containers.run(
            gateway_image, ["python3", "-c", print_client_key], remove=True,
            volumes={state: {"bind": STATE, "mode": "rw"}}, labels={"devhub.test": "1"}).decode().strip()
        assert client_key.startswith("ssh-ed25519 "), client_key
        directory = tmp_path_factory.mktemp("gwkeys")
        users = {name: make_keypair(directory, "ed25519", name=name)
                 for name in ("alice", "bob", "u1", "u2", "u3", "u4", "u5", "mallory", "ghost")}
        users["rsauser"] = make_keypair(directory, "rsa", 3072, name="rsauser")
        containers = {}
        for label in ("a", "b"):
            containers[label] = start_user_container(
                module_resources, image, authorized_keys=client_key, wait=False, network=network.name,
                name=f"devhub-test-gwuser-{label}-{uuid.uuid4().hex[:6]}")
        for uc in containers.values():
            wait_healthy(uc.container)
        routes = {"alice": "a", "u1": "a", "u3": "a", "u5": "a", "mallory": "a", "rsauser": "a", "bob": "b", "u2": "b",
                  "u4": "b"}
        config = {"users": {}}
        for name, keypair in users.items():
            entry = {"keys": [keypair.public_line]}
            if name in routes:
                uc = containers[routes[name]]
                entry.update(host=uc.container.name, port=2222,
                             host_key=WRONG_HOST_KEY if name == "mallory" else container_host_key(uc))
            config["users"][name] = entry
        config["users"]["alice+exp1"] = {"host": containers["b"].container.name, "port": 2222,
                                         "host_key": container_host_key(containers["b"])}
        config_path = directory / "static.json"
        config_path.write_text(json.dumps(config, indent=2))
        config_path.chmod(0o644)
        directory.chmod(0o755)
        yield GatewayEnv(module_resources, network.name, state, config_path, client_key, users, containers,
                         {u: containers[c].container.name for u, c in routes.items()})
    finally:
        module_resources.cleanup()
        network.remove()


@pytest.fixture(scope="module")
def gateway(gw_env):
    """The gateway container most tests share (activity reported every second, metrics served)."""
    return gw_env.start_gateway({"GATEWAY_ACTIVITY_INTERVAL": "1"}, metrics=True)


@pytest.fixture
def hub_gateway(gw_env, docker_client):
    """A gateway in hub mode against a fake hub (real HTTP, on the host): bob runs on container B;
    slowpoke's server takes as long as the test wants to start (then runs on container A)."""
    hub = FakeHub(host="0.0.0.0")
    hub.keys = {name: [gw_env.users[name].public_line] for name in ("bob",)}
    hub.keys["slowpoke"] = [gw_env.users["ghost"].public_line]
    hub.routes = {user: {"host": gw_env.containers[label].container.name, "port": 2222,
                         "host_key": container_host_key(gw_env.containers[label])}
                  for user, label in (("bob", "b"), ("slowpoke", "a"))}
    hub.running = {"bob"}
    hub.slow = {"slowpoke"}
    host = docker_client.networks.get(gw_env.network).attrs["IPAM"]["Config"][0]["Gateway"]
    gw = gw_env.start_gateway({"GATEWAY_ROUTER": "hub", "GATEWAY_STATIC_CONFIG": "",
                               "JUPYTERHUB_API_URL": f"http://{host}:{hub.port}/hub/api",
                               "JUPYTERHUB_API_TOKEN": TOKEN}, metrics=True)
    yield gw, hub
    hub.close()
    gw_env.tracked.remove_container(gw)


def scrape(gateway) -> dict[tuple, float]:
    """GET /metrics from the host, parsed as Prometheus does: (name, sorted labels) -> value."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(f"http://127.0.0.1:{host_port(gateway, f'{METRICS_PORT}/tcp')}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain"), response.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def audit_events(container, event: str | None = None) -> list[dict]:
    events = []
    for line in container.logs(stdout=True, stderr=False).decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and (event is None or record.get("event") == event):
            events.append(record)
    return events
