"""devhub.services: the idle culler as a hub-managed service with minimal scopes."""

import sys

from devhub.services import services_and_roles
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
