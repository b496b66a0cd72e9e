"""`make backup` and `make restore` as an administrator types them, in a fresh clone: a user has files,
an SSH key and a `pip --user` package; `make backup` while the stack runs; `make restore` refuses
while it runs; `make down`, every volume of the project and her home destroyed; `make restore`,
`make up`: she logs in, SSH works with the known_hosts entry saved before (the gateway kept its host
key), with the same key, and her files and package are back.

It runs under a compose project of its own (devhubbk: COMPOSE_PROJECT_NAME and its own user
volume/network prefixes in the clone's .env, its own loopback ports), so no other stack's volumes
are touched; everything of that project is removed at the end, also on failure.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from stack_support import ROOT, Stack, add_key, hub_api, start_server
from support import SshTarget, free_port

PROJECT = "devhubbk"
USER = "bkalice"  # a demo user of its own (DEMO_EXTRA_USERS)
VOLUME_PREFIX = f"{PROJECT}-home-"
NETWORK_PREFIX = f"{PROJECT}-user-"
HOME_VOLUME = f"{VOLUME_PREFIX}{USER}"
PACKAGE = "bkpkg"
MESSAGE = "installed from a wheel in her home"


def env() -> dict:
    """A person's shell (none of the stack's variables) that names this test's project."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_GID", "DEMO_"))}
    return {**clean, "COMPOSE_PROJECT_NAME": PROJECT}


def make(clone: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args], cwd=clone, env=env(), capture_output=True, text=True, timeout=timeout)


def project_volumes(docker_client) -> list[str]:
    return sorted(v.name for v in docker_client.volumes.list(filters={"label": f"com.docker.compose.project={PROJECT}"}))


def remove_project(docker_client, clone: Path | None) -> None:
    """Everything of this test's project: compose's containers, networks and volumes, the hub's user
    servers, networks and homes."""
    if clone is not None and clone.exists():
        make(clone, "down")
    for c in docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"}):
        c.remove(force=True)
    for c in docker_client.containers.list(all=True, filters={"name": f"^{NETWORK_PREFIX}"}):
        c.remove(force=True)
    for n in docker_client.networks.list(filters={"label": f"com.docker.compose.project={PROJECT}"}):
        n.remove()
    for n in docker_client.networks.list(names=[NETWORK_PREFIX]):
        if n.name.startswith(NETWORK_PREFIX):
            n.remove()
    for v in docker_client.volumes.list():
        if v.name.startswith((f"{PROJECT}_", VOLUME_PREFIX, f"{PROJECT}-datasets")):
            v.remove(force=True)


@pytest.fixture(scope="module")
def clone(tmp_path_factory, docker_client):
    path = tmp_path_factory.mktemp("backup") / "devhub"
    remove_project(docker_client, None)  # what an interrupted run left
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True)
    ports = {"HTTPS_PORT": free_port(), "HTTP_PORT": free_port(), "SSH_PORT": free_port()}
    (path / ".env").write_text("".join(f"{k}={v}\n" for k, v in {
        "COMPOSE_PROJECT_NAME": PROJECT, **ports,
        "USER_VOLUME_PREFIX": VOLUME_PREFIX, "USER_NETWORK_PREFIX": NETWORK_PREFIX,
        "DATASETS_SOURCE": f"{PROJECT}-datasets", "DEMO_EXTRA_USERS": USER,
    }.items()))
    try:
        yield path, Stack(ports["HTTPS_PORT"], ports["HTTP_PORT"], ports["SSH_PORT"], env(), project=PROJECT)
    finally:
        remove_project(docker_client, path)
        subprocess.run(["rm", "-rf", str(path / "backups")], check=False)


@dataclass
class PinnedSsh(SshTarget):
    """OpenSSH checking the gateway's host key against a known_hosts file kept across the restore."""

    known_hosts: Path = Path("/dev/null")
    strict: str = "yes"

    def options(self) -> list[str]:
        pinned = {"StrictHostKeyChecking=no": f"StrictHostKeyChecking={self.strict}",
                  "UserKnownHostsFile=/dev/null": f"UserKnownHostsFile={self.known_hosts}"}
        return [pinned.get(option, option) for option in super().options()]


def wheel() -> tuple[str, bytes]:
    """A one-module pure-Python wheel (pip has no index in tests): its file name and bytes."""
    dist = f"{PACKAGE}-1.0.dist-info"
    files = {
        f"{PACKAGE}/__init__.py": f"MESSAGE = {MESSAGE!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: devhub-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data.encode()).digest()).rstrip(b'=').decode()},{len(data.encode())}\n"
        for name, data in files.items()) + f"{dist}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in {**files, f"{dist}/RECORD": record}.items():
            archive.writestr(name, data)
    return f"{PACKAGE}-1.0-py3-none-any.whl", buffer.getvalue()


HER_FILES = ("stat -c '%a %U' ~/project/notes.txt && cat ~/project/notes.txt && "
             f"cd /tmp && python -c 'import {PACKAGE}; print({PACKAGE}.MESSAGE); print({PACKAGE}.__file__)'")


def seconds(output: str, script: str) -> float:
    return float(re.search(rf"^{script}: .* in ([0-9.]+) s", output, re.M).group(1))


def test_backup_then_restore_into_empty_docker_brings_everything_back(clone, docker_client, tmp_path):
    path, stack = clone
    nothing = make(path, "backup")  # before the first `make up`: no volumes of the project yet
    assert nothing.returncode != 0
    assert f"backup: nothing to back up: no volumes of compose project '{PROJECT}'" in nothing.stderr, nothing.stderr
    assert not (path / "backups").exists() or not list((path / "backups").iterdir())

    up = make(path, "up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]

    # alice's (bkalice's) day: a key added through the hub API, files, a package in ~/.local.
    token = stack.login(USER).token()
    key, key_id = add_key(stack, token, USER, tmp_path, "laptop")
    start_server(stack, token, USER)
    known_hosts = tmp_path / "known_hosts"
    first = PinnedSsh(stack.ssh_port, key.private, user=USER, known_hosts=known_hosts, strict="accept-new")
    name, data = wheel()
    first.check(f"mkdir -p ~/project ~/wheels && base64 -d > ~/wheels/{name} && "
                "printf 'the plan\\n' > ~/project/notes.txt && chmod 640 ~/project/notes.txt",
                input=base64.b64encode(data).decode())
    first.check(f"python -m pip install --user --no-index --no-deps --disable-pip-version-check ~/wheels/{name}")
    before = first.check(HER_FILES)
    assert before.splitlines()[:3] == ["640 jovyan", "the plan", MESSAGE], before
    assert "/.local/lib/" in before.splitlines()[3], before
    pinned = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{stack.ssh_port}", "-f", str(known_hosts)],
                            capture_output=True, text=True)
    assert pinned.returncode == 0 and " ssh-ed25519 " in pinned.stdout, pinned  # the gateway's host key
    saved_known_hosts = known_hosts.read_text()

    # `make status` finds this project's user server (its own USER_NETWORK_PREFIX).
    status = make(path, "status")
    assert status.returncode == 0, status.stderr
    assert any(line.startswith(f"{USER} ") and f"{NETWORK_PREFIX}{USER}" in line for line in status.stdout.splitlines()), status.stdout

    # make backup, live: one private archive with the hub's SQLite files as consistent copies.
    backup = make(path, "backup")
    assert backup.returncode == 0, backup.stderr
    archive = Path(re.search(r"^backup: wrote (\S+) \(", backup.stderr, re.M).group(1))
    assert archive.parent == path / "backups" and archive.name.startswith("devhub-"), archive
    assert archive.stat().st_mode & 0o777 == 0o600 and archive.parent.stat().st_mode & 0o777 == 0o700
    members = subprocess.run(["tar", "-tzf", str(archive)], capture_output=True, text=True, check=True).stdout.split()
    for member in ("meta/manifest", "meta/env", "compose/hub-data/jupyterhub.sqlite",
                   "compose/hub-data/devhub-ssh-keys.sqlite", "compose/sshgw-state/ssh_host_ed25519_key",
                   f"home/{USER}/project/notes.txt", f"home/{USER}/wheels/{name}"):
        assert member in members, (member, members[:50])
    assert not [m for m in members if m.startswith("compose/hub-data/") and m.endswith(("-wal", "-shm", "-journal"))]

    # Negative probe: restoring under a running stack is refused, and says what to do.
    refused = make(path, f"BACKUP={archive}", "restore")
    assert refused.returncode != 0
    assert f"restore: refusing to restore while the stack of compose project '{PROJECT}' has containers" in refused.stderr, refused.stderr
    assert "run `make down` first" in refused.stderr and f"{PROJECT}-hub-1 (running)" in refused.stderr, refused.stderr

    # Disaster: the stack down, every volume of the project and her home gone, the checkout's .env too.
    down = make(path, "down")
    assert down.returncode == 0, down.stderr
    saved_env = (path / ".env").read_text()
    (path / ".env").unlink()
    for volume in [*project_volumes(docker_client), HOME_VOLUME]:
        docker_client.volumes.get(volume).remove()
    assert project_volumes(docker_client) == []
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(HOME_VOLUME)

    restore = make(path, f"BACKUP={archive}", "restore")
    assert restore.returncode == 0, restore.stderr
    assert (path / ".env").read_text() == saved_env and (path / ".env").stat().st_mode & 0o777 == 0o600
    assert {"hub-data", "sshgw-state", "sshgw-secret", "proxy-secret", "tls"} <= {
        v.removeprefix(f"{PROJECT}_") for v in project_volumes(docker_client)}
    docker_client.volumes.get(HOME_VOLUME)
    # Restoring again over what is now there needs FORCE=1.
    again = make(path, f"BACKUP={archive}", "restore")
    assert again.returncode != 0 and "restore: refusing to overwrite existing volumes" in again.stderr, again.stderr
    assert "FORCE=1 replaces them" in again.stderr
    forced = make(path, f"BACKUP={archive}", "FORCE=1", "restore")
    assert forced.returncode == 0 and "restore: FORCE=1: removing" in forced.stderr, forced.stderr

    up = make(path, "up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "already exists" not in up.stderr, up.stderr  # compose adopts the restored volumes as its own

    # She logs in; her key is the one she added; SSH with the old known_hosts and strict checking.
    token = stack.login(USER).token()
    keys = hub_api(stack, token, "GET", f"/devhub/ssh/users/{USER}/keys").json()["entries"]
    assert [(k["id"], k["key"]) for k in keys] == [(key_id, key.public_line)], keys
    assert known_hosts.read_text() == saved_known_hosts
    after = PinnedSsh(stack.ssh_port, key.private, user=USER, known_hosts=known_hosts, strict="yes")
    assert after.check(HER_FILES, timeout=300) == before
    assert known_hosts.read_text() == saved_known_hosts

    size = archive.stat().st_size
    print(f"\nbackup: {seconds(backup.stderr, 'backup')} s, archive {size / 1e6:.1f} MB; "
          f"restore: {seconds(restore.stderr, 'restore')} s")
