"""Hub-managed services and their roles: the idle cullers (IDLE_CULL_TIMEOUT, IDLE_CULL_TIMEOUT_GPU)
and the SSH gateway's API identity (unless SSH_GATEWAY=0)."""

from __future__ import annotations

import sys

from . import audit, secrets
from .scopes import SCOPE_KEYS_READ, SCOPE_ROUTE
from .settings import Settings

CULLER = audit.CULLER
# Exactly what the culler needs to stop idle servers (it never deletes users here).
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
GPU_CULLER = audit.GPU_CULLER
# The same, plus reading servers' state (which GPUs they hold).
GPU_CULLER_SCOPES = [*CULLER_SCOPES, "admin:server_state"]


def cull_every(timeout: int) -> int:
    """Seconds between cull passes: a quarter of the timeout, within 5 s .. 10 min."""
    return max(5, min(600, timeout // 4))


def cull_reasons(settings: Settings) -> dict[str, str]:
    """What each culler's stop means, for the audit log and the SSH gateway's notice (devhub.stops)."""
    return {CULLER: f"idle for more than {duration(settings.idle_cull_timeout)} (IDLE_CULL_TIMEOUT)",
            GPU_CULLER: f"GPU server idle for more than {duration(settings.idle_cull_timeout_gpu)} (IDLE_CULL_TIMEOUT_GPU)"}


def duration(seconds: int) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def services_and_roles(settings: Settings) -> tuple[list[dict], list[dict]]:
    """The idle culler (unless IDLE_CULL_TIMEOUT=0) and the GPU idle culler (with
    IDLE_CULL_TIMEOUT_GPU, where servers can hold GPUs)."""
    services, roles = [], []
    cullers = [(CULLER, "jupyterhub_idle_culler", settings.idle_cull_timeout, CULLER_SCOPES)]
    if settings.may_hold_gpus:
        cullers.append((GPU_CULLER, "devhub.gpu_culler", settings.idle_cull_timeout_gpu, GPU_CULLER_SCOPES))
    for name, module, timeout, scopes in cullers:
        if timeout == 0:
            continue
        services.append({"name": name, "command": [sys.executable, "-m", module, f"--timeout={timeout}",
                                                   f"--cull-every={cull_every(timeout)}"]})
        roles.append({"name": name, "scopes": list(scopes), "services": [name]})
    return services, roles


SSH_GATEWAY = "ssh-gateway"
# The gateway checks users' keys, looks up where their sshd is, starts a stopped server when its
# user connects, and reports SSH sessions as activity (so the idle culler spares them).
SSH_GATEWAY_SCOPES = [SCOPE_KEYS_READ, SCOPE_ROUTE, "read:servers", "servers", "users:activity"]


def ssh_gateway(settings: Settings, log=None) -> tuple[list[dict], list[dict]]:
    """The gateway as an external service (compose runs it), its token readable by the group
    SSH_GATEWAY_TOKEN_GID (it runs as another user)."""
    if not settings.ssh_gateway:
        return [], []
    return external_service(SSH_GATEWAY, SSH_GATEWAY_SCOPES, settings.ssh_gateway_token_file,
                            settings.ssh_gateway_token_gid, log, "SSH gateway disabled",
                            "mount the volume shared with the gateway there, or set SSH_GATEWAY_TOKEN_FILE; SSH_GATEWAY=0 silences this")


METRICS_READER = "prometheus"
# Prometheus reads JupyterHub's and devhub's metrics (devhub.metrics) and nothing else.
METRICS_READER_SCOPES = ["read:metrics"]


def metrics_reader(settings: Settings, log=None) -> tuple[list[dict], list[dict]]:
    """Prometheus (compose profile "monitoring") as an external service with only read:metrics."""
    return external_service(METRICS_READER, METRICS_READER_SCOPES, settings.metrics_token_file,
                            settings.metrics_token_gid, log, "Metrics token not created",
                            "mount the volume shared with Prometheus there, or set METRICS_TOKEN_FILE")


def external_service(name: str, scopes: list[str], token_file: str, gid: int | None, log, disabled: str,
                     fix: str) -> tuple[list[dict], list[dict]]:
    """A service that compose runs (no URL, no command): its API token is generated on first start
    into `token_file` (mode 600, or 640 for the group `gid`), whose directory must be a volume shared
    with that service only. Without that directory the service is left out, with a warning (nothing
    could hand the token over)."""
    token = secrets.read_or_create_shared(token_file, log, disabled, fix, group=gid)
    if token is None:
        return [], []
    service = {"name": name, "api_token": token, "display": False}
    role = {"name": name, "scopes": list(scopes), "services": [name]}
    return [service], [role]
