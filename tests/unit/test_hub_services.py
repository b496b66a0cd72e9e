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
    assert services[1]["command"] == [sys.executable, "-m", "devhub.culler", "--gpus", "--timeout=900", "--cull-every=225"]
    # It reads which GPUs a server holds from its state, and may do nothing else the culler may not.
    assert set(roles[1]["scopes"]) - set(roles[0]["scopes"]) == {"admin:server_state"}
    assert cull_reasons(settings)["devhub-gpu-culler"] == "GPU server idle for more than 15 min (IDLE_CULL_TIMEOUT_GPU)"
    assert cull_reasons(settings)["jupyterhub-idle-culler"] == "idle for more than 1 h (IDLE_CULL_TIMEOUT)"


def test_no_gpu_culler_without_gpus_or_timeout():
    assert [s["name"] for s in services_and_roles(load({"IDLE_CULL_TIMEOUT_GPU": "900"}))[0]] == ["jupyterhub-idle-culler"]
    assert services_and_roles(load({"IDLE_CULL_TIMEOUT": "0", "GPU_MODE": "all"})) == ([], [])


def test_short_timeouts_are_checked_often():
    assert [cull_every(t) for t in (10, 40, 1800, 86400)] == [5, 10, 450, 600]


def test_per_profile_culler_with_the_idle_culler_as_backstop(tmp_path):
    profiles = tmp_path / "profiles.json"
    profiles.write_text('[{"name": "cpu", "idle_timeout": 28800}, {"name": "gpu", "gpus": 1, "idle_timeout": 3600},'
                        ' {"name": "plain"}]')
    settings = load({"PROFILES": str(profiles), "GPU_DEVICES": "0", "IDLE_CULL_TIMEOUT": "7200"})
    services, roles = services_and_roles(settings)
    commands = {s["name"]: s["command"][2:] for s in services}
    assert commands == {
        # Each server by its profile's timeout (plain: IDLE_CULL_TIMEOUT), checked every 10 min (a quarter of the shortest, at most 10 min).
        "devhub-profile-culler": ["devhub.culler", "--profiles", "--timeout=7200", "--cull-every=600"],
        # jupyterhub-idle-culler knows one timeout: the longest, so it never cuts a profile's time short.
        "jupyterhub-idle-culler": ["jupyterhub_idle_culler", "--timeout=28800", "--cull-every=600"],
    }
    assert {r["name"]: r["scopes"] for r in roles}["devhub-profile-culler"][-1] == "admin:server_state"
    assert cull_reasons(settings)["devhub-profile-culler"] == (
        "idle for longer than its profile's idle_timeout (cpu: 8 h, gpu: 1 h, plain: 2 h)")
    # IDLE_CULL_TIMEOUT=0 (never): no backstop, only the profiles that set a timeout cull.
    never = load({"PROFILES": str(profiles), "GPU_DEVICES": "0", "IDLE_CULL_TIMEOUT": "0"})
    assert [s["name"] for s in services_and_roles(never)[0]] == ["devhub-profile-culler"]
