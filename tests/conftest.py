"""Fixtures for the devhub test suite. Docker-backed fixtures fail (never skip) without an engine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from devhub import spawner
from support import KeyPair, SshTarget, TrackedResources, host_port, make_keypair, wait_healthy

IMAGE = os.environ.get("DEVHUB_IMAGE", "devhub/dev-gpu:latest")
ARTIFACTS = Path(__file__).parent / "artifacts"

# The flags the hub starts user containers with, from the spawner itself (the image must work
# unchanged under all of them), and limits like the hub's defaults.
HARDENED = dict(
    user=spawner.CONTAINER_USER,
    **spawner.LOCKED_DOWN,
    tmpfs={"/tmp": spawner.tmp_tmpfs(2 * 1024**3), "/run": spawner.RUN_TMPFS},
    pids_limit=512,
    mem_limit="6g",
    nano_cpus=2_000_000_000,
    shm_size="256m",
)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = docker.from_env(timeout=300)
    client.ping()
    return client


@pytest.fixture(scope="session")
def image(docker_client) -> str:
    docker_client.images.get(IMAGE)  # raises ImageNotFound: run `make images`
    return IMAGE


@pytest.fixture
def resources(docker_client):
    tracked = TrackedResources(docker_client)
    yield tracked
    tracked.cleanup()


@pytest.fixture(scope="module")
def module_resources(docker_client):
    tracked = TrackedResources(docker_client)
    yield tracked
    tracked.cleanup()


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, KeyPair]:
    directory = tmp_path_factory.mktemp("keys")
    return {
        "user": make_keypair(directory, "ed25519", name="user"),
        "other": make_keypair(directory, "ed25519", name="other"),
        "ecdsa": make_keypair(directory, "ecdsa", 384, name="ecdsa"),
        "rsa2048": make_keypair(directory, "rsa", 2048, name="rsa2048"),
    }


@dataclass
class UserContainer:
    container: docker.models.containers.Container
    home: str
    datasets: str

    @property
    def ssh_port(self) -> int:
        return host_port(self.container, "2222/tcp")

    @property
    def jupyter_port(self) -> int:
        return host_port(self.container, "8888/tcp")

    def ssh(self, key: KeyPair, user: str = "jovyan") -> SshTarget:
        return SshTarget(self.ssh_port, key.private, user=user)


def start_user_container(
    tracked: TrackedResources,
    image: str,
    authorized_keys: str = "",
    home: str | None = None,
    datasets: str | None = None,
    environment: dict | None = None,
    hardened: bool = True,
    wait: bool = True,
    **kwargs,
) -> UserContainer:
    """Start the user image as the hub would: home and datasets volumes, ports on loopback only."""
    home = home or tracked.volume("devhub-test-home")
    datasets = datasets or tracked.volume("devhub-test-datasets")
    env = {"DEVHUB_SSH_AUTHORIZED_KEYS": authorized_keys, **(environment or {})}
    options = dict(HARDENED) if hardened else {}
    options.update(kwargs)
    container = tracked.run(
        image,
        environment=env,
        volumes={home: {"bind": "/home/jovyan", "mode": "rw"}, datasets: {"bind": "/datasets", "mode": "ro"}},
        ports={"2222/tcp": ("127.0.0.1", None), "8888/tcp": ("127.0.0.1", None)},
        **options,
    )
    if wait:
        wait_healthy(container)
    return UserContainer(container, home, datasets)


@pytest.fixture(scope="module")
def user_container(module_resources, image, keys) -> UserContainer:
    """One hardened container shared by a module's tests; the 'user' key may log in."""
    return start_user_container(module_resources, image, authorized_keys=keys["user"].public_line)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    """The test environment's bin directory (ssh-audit, hadolint live there)."""
    import sys

    return Path(sys.executable).parent
