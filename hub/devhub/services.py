"""Hub-managed services and their roles: the idle cullers (IDLE_CULL_TIMEOUT, IDLE_CULL_TIMEOUT_GPU,
profiles' idle_timeout) and the SSH gateway's API identity (unless SSH_GATEWAY=0)."""

from __future__ import annotations

import sys

from . import audit
from .scopes import SCOPE_KEYS_READ, SCOPE_ROUTE
from .settings import Settings

CULLER = audit.CULLER
# Exactly what the culler needs to stop idle servers (it never deletes users here).
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
GPU_CULLER = audit.GPU_CULLER
# The same, plus reading servers' state (which GPUs they hold).
GPU_CULLER_SCOPES = [*CULLER_SCOPES, "admin:server_state"]
PROFILE_CULLER = audit.PROFILE_CULLER  # the same scopes: it reads each server's idle_timeout from its state


def cull_every(timeout: int) -> int:
    """Seconds between cull passes: a quarter of the timeout, within 5 s .. 10 min."""
    return max(5, min(600, timeout // 4))


def cull_reasons(settings: Settings) -> dict[str, str]:
    """What each culler's stop means, for the audit log and the SSH gateway's notice (devhub.stops)."""
    default = settings.idle_cull_timeout
    per_profile = ", ".join(f"{p.name}: {duration(p.idle_timeout or default) if p.idle_timeout or default else 'never'}"
                            for p in settings.profiles)
    return {CULLER: f"idle for more than {duration(default)} (IDLE_CULL_TIMEOUT)",
            GPU_CULLER: f"GPU server idle for more than {duration(settings.idle_cull_timeout_gpu)} (IDLE_CULL_TIMEOUT_GPU)",
            PROFILE_CULLER: f"idle for longer than its profile's idle_timeout ({per_profile})"}


def duration(seconds: int) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def services_and_roles(settings: Settings) -> tuple[list[dict], list[dict]]:
    """The idle culler (unless IDLE_CULL_TIMEOUT=0), the GPU idle culler (with IDLE_CULL_TIMEOUT_GPU,
    where servers can hold GPUs) and, when a profile sets idle_timeout, the per-profile culler, with
    jupyterhub-idle-culler kept as a backstop at the longest timeout (it knows one timeout only)."""
    default = settings.idle_cull_timeout
    cullers = []  # (name, module and mode, timeout, seconds between passes, scopes) of those that run
    if settings.profile_idle_timeouts:
        timeouts = [default, *(p.idle_timeout for p in settings.profiles)]
        every = cull_every(min(t for t in timeouts if t))
        cullers.append((PROFILE_CULLER, ["devhub.culler", "--profiles"], default, every, GPU_CULLER_SCOPES))
        if default:
            cullers.append((CULLER, ["jupyterhub_idle_culler"], max(timeouts), every, CULLER_SCOPES))
    elif default:
        cullers.append((CULLER, ["jupyterhub_idle_culler"], default, cull_every(default), CULLER_SCOPES))
    gpu = settings.idle_cull_timeout_gpu
    if settings.may_hold_gpus and gpu:
        cullers.append((GPU_CULLER, ["devhub.culler", "--gpus"], gpu, cull_every(gpu), GPU_CULLER_SCOPES))
    services, roles = [], []
    for name, module, timeout, every, scopes in cullers:
        services.append({"name": name, "command": [sys.executable, "-m", *module, f"--timeout={timeout}",
                                                   f"--cull-every={every}"]})
        roles.append({"name": name, "scopes": list(scopes), "services": [name]})
    return services, roles


SSH_GATEWAY = "ssh-gateway"
# The gateway checks users' keys, looks up where their sshd is, starts a stopped server when its
# user connects, and reports SSH sessions as activity (so the idle culler spares them).
SSH_GATEWAY_SCOPES = [SCOPE_KEYS_READ, SCOPE_ROUTE, "read:servers", "servers", "users:activity"]


def ssh_gateway(token: str | None) -> tuple[list[dict], list[dict]]:
    """The gateway as an external service (compose runs it) with its token (secrets.for_hub), if any."""
    return external_service(SSH_GATEWAY, SSH_GATEWAY_SCOPES, token)


METRICS_READER = "prometheus"
# Prometheus reads JupyterHub's and devhub's metrics (devhub.metrics) and nothing else.
METRICS_READER_SCOPES = ["read:metrics"]


def metrics_reader(token: str | None) -> tuple[list[dict], list[dict]]:
    """Prometheus (compose profile "monitoring") as an external service with only read:metrics."""
    return external_service(METRICS_READER, METRICS_READER_SCOPES, token)


def external_service(name: str, scopes: list[str], token: str | None) -> tuple[list[dict], list[dict]]:
    """A service that compose runs (no URL, no command), with the API token the hub created in a
    volume shared with it only (secrets.for_hub); without one, it is left out (nothing could hand
    the token over: secrets.for_hub has warned)."""
    if token is None:
        return [], []
    service = {"name": name, "api_token": token, "display": False}
    role = {"name": name, "scopes": list(scopes), "services": [name]}
    return [service], [role]
