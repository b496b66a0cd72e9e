"""The gateway's persistent keys, generated on first start in the state directory (mode 600).

- ``ssh_host_ed25519_key``: the host key users' clients pin (ed25519 only: no ECDSA/NIST, no RSA).
- ``gateway_client_key`` (+ ``.pub``): the key the gateway logs in to user containers with. Its
  public half goes into every user container's ``DEVHUB_SSH_AUTHORIZED_KEYS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh

HOST_KEY = "ssh_host_ed25519_key"
CLIENT_KEY = "gateway_client_key"


def _write_private(path: Path, key: asyncssh.SSHKey) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key("openssh"))
    os.replace(tmp, path)


def load_or_create(state_dir: Path, name: str, comment: str) -> asyncssh.SSHKey:
    """Load ``state_dir/name`` or generate an ed25519 key there (private 600, public 644)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o755)  # .pub readable by the hub
    path = state_dir / name
    if path.exists():
        key = asyncssh.read_private_key(str(path))
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    else:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
        _write_private(path, key)
    pub = state_dir / f"{name}.pub"
    line = key.export_public_key("openssh").decode().strip()
    if not pub.exists() or pub.read_text().strip() != line:
        pub.write_text(line + "\n")
        os.chmod(pub, 0o644)
    return key


def host_key(state_dir: Path) -> asyncssh.SSHKey:
    return load_or_create(state_dir, HOST_KEY, "devhub-sshgw host key")


def client_key(state_dir: Path) -> asyncssh.SSHKey:
    return load_or_create(state_dir, CLIENT_KEY, "devhub-sshgw")


def public_line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode().strip()
