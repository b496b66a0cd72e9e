"""Hub-managed services and their roles: the idle culler (unless IDLE_CULL_TIMEOUT=0) and the SSH
gateway's API identity (unless SSH_GATEWAY=0)."""

from __future__ import annotations

import sys

from . import secrets
from .settings import Settings
from .ssh_handlers import SCOPE_KEYS_READ, SCOPE_ROUTE

CULLER = "jupyterhub-idle-culler"
# Exactly what the culler needs to stop idle servers (it never deletes users here).
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def services_and_roles(settings: Settings) -> tuple[list[dict], list[dict]]:
    if settings.idle_cull_timeout == 0:
        return [], []
    cull_every = max(60, min(600, settings.idle_cull_timeout // 4))
    service = {
        "name": CULLER,
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={settings.idle_cull_timeout}",
            f"--cull-every={cull_every}",
        ],
    }
    role = {"name": CULLER, "scopes": list(CULLER_SCOPES), "services": [CULLER]}
    return [service], [role]


SSH_GATEWAY = "ssh-gateway"
# The gateway checks users' keys, looks up where their sshd is, starts a stopped server when its
# user connects, and reports SSH sessions as activity (so the idle culler spares them).
SSH_GATEWAY_SCOPES = [SCOPE_KEYS_READ, SCOPE_ROUTE, "read:servers", "servers", "users:activity"]


def ssh_gateway(settings: Settings, log=None) -> tuple[list[dict], list[dict]]:
    """The gateway as an external service (no URL, no command: compose runs it): its API token is
    generated on first start into SSH_GATEWAY_TOKEN_FILE (mode 600, or 640 for the group
    SSH_GATEWAY_TOKEN_GID), whose directory must be a volume shared with the gateway only. Without that directory the service is left out, with a
    warning (nothing could hand the token to the gateway)."""
    if not settings.ssh_gateway:
        return [], []
    token = secrets.read_or_create_shared(
        settings.ssh_gateway_token_file, log, "SSH gateway disabled",
        "mount the volume shared with the gateway there, or set SSH_GATEWAY_TOKEN_FILE; SSH_GATEWAY=0 silences this",
        # The gateway runs as its own user and reads the token by this group (compose: group_add on both).
        group=settings.ssh_gateway_token_gid)
    if token is None:
        return [], []
    service = {"name": SSH_GATEWAY, "api_token": token, "display": False}
    role = {"name": SSH_GATEWAY, "scopes": list(SSH_GATEWAY_SCOPES), "services": [SSH_GATEWAY]}
    return [service], [role]
