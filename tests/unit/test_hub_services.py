"""devhub.services: the idle culler as a hub-managed service with minimal scopes."""

import sys

from devhub.services import cull_every, cull_reasons, services_and_roles
from devhub.settings import load


def test_culler_enabled_with_minimal_scopes():
    services, roles = services_and_roles(load({"IDLE_CULL_TIMEOUT": "1800"}))
    assert services == [{
        "name": "jupyterhub-idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=1800", "--cull-every=450"],
    }]
    assert roles == [{
        "name": "jupyterhub-idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["jupyterhub-idle-culler"],
    }]


def test_culler_disabled_by_zero():
    assert services_and_roles(load({"IDLE_CULL_TIMEOUT": "0"})) == ([], [])


def test_culler_module_exists():
    import jupyterhub_idle_culler  # noqa: F401 - the command above must be runnable


def test_gpu_culler_where_servers_can_hold_gpus():
    settings = load({"IDLE_CULL_TIMEOUT": "3600", "IDLE_CULL_TIMEOUT_GPU": "900", "GPU_MODE": "all"})
    services, roles = services_and_roles(settings)
    assert [s["name"] for s in services] == ["jupyterhub-idle-culler", "devhub-gpu-culler"]
    assert services[1]["command"] == [sys.executable, "-m", "devhub.gpu_culler", "--timeout=900", "--cull-every=225"]
    # It reads which GPUs a server holds from its state, and may do nothing else the culler may not.
    assert set(roles[1]["scopes"]) - set(roles[0]["scopes"]) == {"admin:server_state"}
    assert cull_reasons(settings)["devhub-gpu-culler"] == "GPU server idle for more than 15 min (IDLE_CULL_TIMEOUT_GPU)"
    assert cull_reasons(settings)["jupyterhub-idle-culler"] == "idle for more than 1 h (IDLE_CULL_TIMEOUT)"


def test_no_gpu_culler_without_gpus_or_timeout():
    assert [s["name"] for s in services_and_roles(load({"IDLE_CULL_TIMEOUT_GPU": "900"}))[0]] == ["jupyterhub-idle-culler"]
    assert services_and_roles(load({"IDLE_CULL_TIMEOUT": "0", "GPU_MODE": "all"})) == ([], [])


def test_short_timeouts_are_checked_often():
    assert [cull_every(t) for t in (10, 40, 1800, 86400)] == [5, 10, 450, 600]
