"""Hub-managed services and their roles: the idle culler (unless IDLE_CULL_TIMEOUT=0)."""

from __future__ import annotations

import sys

from .settings import Settings

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
