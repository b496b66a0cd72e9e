"""Test helpers shared by the integration tests: polling, tracked Docker resources, SSH clients.

Modelled on jupyter/docker-stacks' tests: containers are tracked and always removed, readiness is
polled with a deadline (never slept on), and scripts under tests/in_image run inside the image.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import docker
from docker.models.containers import Container

T = TypeVar("T")
LABEL = "devhub.test"
IN_IMAGE = Path(__file__).parent / "in_image"


# Chromium as the tests run it (Playwright, Debian's build): no sandbox as root, nothing phoning home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-gpu"]


NETWORK_CUT_OFF = ("ERR_NETWORK_CHANGED", "chrome-error://", "is interrupted by another navigation")


def cut_off(error: Exception | str) -> bool:
    """Whether a Playwright error (or a failed request's failure text) is a load Chromium cut off
    because the host's network interfaces changed (see goto), or the error page or Chromium's own
    reload of it interrupting a load."""
    return any(sign in str(error) for sign in NETWORK_CUT_OFF)


def goto(page, url: str, timeout: float = 60, **kwargs):
    """page.goto(url), again while Chromium cuts the load off with ERR_NETWORK_CHANGED: it does so
    when the host's network interfaces change, and every spawn on this host adds a Docker bridge or
    veth. A browser on another machine never sees that. Chromium then reloads the cut-off page on
    its own, and that load can land during the next try and interrupt it: so that is tried again too.
    Any other error is raised at once."""
    from playwright.sync_api import Error as PlaywrightError

    kwargs.setdefault("wait_until", "domcontentloaded")
    deadline = time.monotonic() + timeout
    while True:
        try:
            return page.goto(url, **kwargs)
        except PlaywrightError as exc:
            if not cut_off(exc) or time.monotonic() > deadline:
                raise


def log_in_with_demo_idp(page, login_url: str, user: str, landed, timeout: float = 120) -> None:
    """Log `user` in through the demo identity provider's page (its button for `user`) and wait until
    the page's URL matches `landed` (a compiled pattern). The redirects after the click can be cut
    off like any load (see goto), and Chromium's own reload of the cut-off page may then replay a
    step that cannot be replayed (the hub's OAuth callback with a code already used): then the whole
    login is done again, within `timeout` seconds; one try waits 20 s at most."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout
    while True:
        try:
            goto(page, login_url, timeout=max(1.0, deadline - time.monotonic()))
            page.get_by_role("button", name=user, exact=True).click()
            page.wait_for_url(landed, timeout=min(20.0, max(1.0, deadline - time.monotonic())) * 1000)
            return
        except PlaywrightError as exc:
            if not cut_off(exc) or time.monotonic() > deadline:
                raise
            print(f"log_in_with_demo_idp: {user}'s login was cut off at {page.url}; logging in again")


def wait_until(predicate: Callable[[], T], timeout: float = 60, interval: float = 0.2, what: str = "condition") -> T:
    """Poll `predicate` until it returns a truthy value; fail with `what` after `timeout` seconds.

    Exceptions raised by the predicate count as "not yet" and the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        pause_between_polls(min(interval, max(0.0, deadline - time.monotonic())))


def pause_between_polls(seconds: float) -> None:
    """The interval between two checks of a polled condition (wait_until): a fixed pause, never a
    wait for readiness, which only the condition decides."""
    threading.Event().wait(seconds)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class TrackedResources:
    """Containers and volumes made by a test, removed (with their anonymous volumes) at teardown."""

    def __init__(self, client: docker.DockerClient):
        self.client = client
        self.containers: list[Container] = []
        self.volumes: list[str] = []

    def run(self, image: str, **kwargs) -> Container:
        kwargs.setdefault("detach", True)
        kwargs.setdefault("labels", {})[LABEL] = "1"
        container = self.client.containers.run(image, **kwargs)
        self.containers.append(container)
        return container

    def volume(self, prefix: str = "devhub-test") -> str:
        name = unique(prefix)
        self.client.volumes.create(name, labels={LABEL: "1"})
        self.volumes.append(name)
        return name

    def remove_container(self, container: Container) -> None:
        container.remove(force=True, v=True)
        self.containers.remove(container)

    def cleanup(self) -> None:
        for container in reversed(self.containers):
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        self.containers.clear()
        for name in self.volumes:
            try:
                self.client.volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        self.volumes.clear()


def health(container: Container) -> str:
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status", "none")


def wait_healthy(container: Container, timeout: float = 120) -> None:
    def healthy() -> bool:
        state = health(container)
        if container.status == "exited":
            raise AssertionError(f"container exited:\n{container.logs().decode(errors='replace')[-3000:]}")
        return state == "healthy"

    try:
        wait_until(healthy, timeout, what=f"{container.name} to become healthy")
    except TimeoutError:
        log = container.logs().decode(errors="replace")[-3000:]
        raise TimeoutError(f"{container.name} not healthy; last log lines:\n{log}") from None


def host_port(container: Container, port: str) -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])


def exec_out(container: Container, cmd: list[str] | str, user: str = "", check: bool = True) -> str:
    code, out = container.exec_run(cmd, user=user)
    text = out.decode(errors="replace")
    if check and code != 0:
        raise AssertionError(f"{cmd!r} exited {code}: {text}")
    return text


@dataclass
class KeyPair:
    private: Path
    public_line: str


def make_keypair(directory: Path, key_type: str = "ed25519", bits: int | None = None, name: str | None = None) -> KeyPair:
    path = directory / (name or f"id_{key_type}_{uuid.uuid4().hex[:6]}")
    cmd = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"test-{key_type}", "-f", str(path)]
    if bits:
        cmd += ["-b", str(bits)]
    subprocess.run(cmd, check=True)
    return KeyPair(path, Path(f"{path}.pub").read_text().strip())


@dataclass
class SshTarget:
    """An OpenSSH client pointed at one sshd, with throwaway known_hosts and a chosen key."""

    port: int
    key: Path
    user: str = "jovyan"
    host: str = "127.0.0.1"
    log_level: str = "ERROR"  # INFO also shows the server's auth banners and disconnect reasons

    def options(self) -> list[str]:
        return [
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", f"LogLevel={self.log_level}", "-o", "ConnectTimeout=10", "-i", str(self.key),
        ]

    def ssh_args(self, *extra: str) -> list[str]:
        return ["ssh", "-p", str(self.port), *self.options(), *extra, f"{self.user}@{self.host}"]

    def run(self, command: str, *extra: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.ssh_args(*extra), command], input=input, capture_output=True, text=True, timeout=timeout
        )

    def check(self, command: str, *extra: str, input: str | None = None, timeout: float = 120) -> str:
        result = self.run(command, *extra, input=input, timeout=timeout)
        assert result.returncode == 0, f"ssh {command!r} exited {result.returncode}: {result.stderr}"
        return result.stdout

    def run_script(self, script: str, *args: str, timeout: float = 300) -> str:
        """Run tests/in_image/<script> inside the container with the SSH session's Python."""
        source = (IN_IMAGE / script).read_text()
        quoted = " ".join(f"'{a}'" for a in args)
        return self.check(f"python - {quoted}", input=source, timeout=timeout)
