"""An operator's jupyterhub_config.d can add container settings but never drop the hardening: the real
hub loads an override that tries to loosen everything, and bob's real container keeps every flag."""

from stack_support import hub_api, start_server, stop_server, user_container
from support import wait_until

LOOSEN = """c.DevhubSpawner.extra_host_config = {
    'cap_drop': [], 'cap_add': ['SYS_ADMIN'], 'privileged': True, 'read_only': False, 'security_opt': [],
    'pids_limit': 0, 'network_mode': 'bridge', 'extra_hosts': {'licence-server': '10.9.8.7'},
}
"""
OVERRIDE = "/srv/jupyterhub/jupyterhub_config.d/50-test-loosen.py"


def test_override_cannot_drop_hardening_on_a_real_container(stack, bob_token, docker_client):
    hub = stack.container(docker_client, "hub")
    hub.exec_run(["sh", "-c", f"mkdir -p {OVERRIDE.rsplit('/', 1)[0]} && cat > {OVERRIDE} <<'EOF'\n{LOOSEN}EOF"])
    try:
        stack.restart_hub()
        assert "Loading config override " + OVERRIDE in stack.compose("logs", "--no-color", "hub").stdout
        # bob's login may have started his server just before the restart: let that settle, then start anew.
        wait_until(lambda: not hub_api(stack, bob_token, "GET", "/users/bob").json()["pending"], 120, interval=0.5,
                   what="bob's server to settle after the hub restart")
        if user_container_exists(docker_client):
            stop_server(stack, bob_token, "bob")
        start_server(stack, bob_token, "bob")
        hc = user_container(docker_client, "bob").attrs["HostConfig"]
        assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"] and hc["Privileged"] is False
        assert hc["ReadonlyRootfs"] is True and hc["SecurityOpt"] == ["no-new-privileges"] and hc["PidsLimit"] == 1024
        assert hc["NetworkMode"] == "devhubtest-user-bob"
        assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
        assert hc["ExtraHosts"] == ["licence-server:10.9.8.7"]  # the operator's addition is applied
        stop_server(stack, bob_token, "bob")
    finally:
        hub.exec_run(["rm", "-f", OVERRIDE])
        stack.restart_hub()


def user_container_exists(docker_client) -> bool:
    return bool(docker_client.containers.list(all=True, filters={"name": "^devhubtest-user-bob$"}))
