"""Hub restarts do not disturb users; hostile user names get distinct, valid Docker names."""

import json
import re
from urllib.parse import quote

import websocket

from stack_support import BRACE_USER, hub_api, kernel_execute, kernel_socket, start_server, stop_server, user_container

DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def test_hub_restart_keeps_server_kernel_and_login(stack, alice, alice_token, docker_client):
    start_server(stack, alice_token, "alice")
    before = user_container(docker_client, "alice").id
    # Open her server in the "browser" (OAuth with the hub sets the server's own cookie).
    lab = alice.session.get(f"{stack.server_url('alice')}/lab", timeout=60)
    assert lab.status_code == 200 and "/user/alice/lab" in lab.url
    assert alice.session.get(f"{stack.server_url('alice')}/api/status", timeout=30).status_code == 200
    headers = {"Authorization": f"token {alice_token}"}
    kernel = alice.session.post(f"{stack.server_url('alice')}/api/kernels", headers=headers, json={}, timeout=60).json()
    ws = kernel_socket(stack, alice_token, "alice", kernel["id"])
    assert kernel_execute(ws, "x = 41; print('ready')").strip() == "ready"

    stack.restart_hub()

    after = user_container(docker_client, "alice")
    assert after.id == before and after.status == "running"
    try:
        result = kernel_execute(ws, "print(x + 1)")
    except (websocket.WebSocketException, OSError):  # reconnecting is allowed; the kernel must survive
        ws = kernel_socket(stack, alice_token, "alice", kernel["id"])
        result = kernel_execute(ws, "print(x + 1)")
    assert result.strip() == "42"
    ws.close()
    # Her browser session is still good: no new login for the hub or her server.
    home = alice.session.get(f"{stack.url}/hub/home", timeout=30)
    assert home.status_code == 200 and "/hub/login" not in home.url
    status = alice.session.get(f"{stack.server_url('alice')}/api/status", timeout=30)
    assert status.status_code == 200, status.url


HOSTILE = ["UPPER.Case", "ünïcødé-名前", "-leading-dash", "a.b", "a-b", "a_b", "x" * 200]


def test_hostile_usernames_are_accepted_with_distinct_valid_names_or_refused(stack, alice_token, docker_client):
    users = []
    for name in HOSTILE:
        one = hub_api(stack, alice_token, "POST", f"/users/{quote(name, safe='')}")
        assert one.status_code in (201, 400), one.text  # created, or a clean refusal
        if one.status_code == 201:
            users.append(one.json()["name"])
    assert len(users) >= 5, users
    # The names the running hub's spawner would give them (its own code and settings; starting
    # their servers needs each of them to log in first, which the demo provider allows only to
    # alice and bob).
    hub = stack.container(docker_client, "hub")
    script = ("import json, sys; from devhub import names, settings; s = settings.load(); "
              "objs = [names.ServerObjects(user=u, network_prefix=s.user_network_prefix, volume_prefix=s.user_volume_prefix) "
              "for u in json.loads(sys.argv[1])]; "
              "print(json.dumps([[o.container, o.home, o.network] for o in objs]))")
    computed = json.loads(hub.exec_run(["python", "-c", script, json.dumps(users)]).output)
    for kind in range(3):
        column = [row[kind] for row in computed]
        assert len(set(column)) == len(users), column
        for name in column:
            assert DOCKER_NAME.match(name) and len(name) <= 63 and not name.startswith("-"), name
    for user in users:
        assert hub_api(stack, alice_token, "DELETE", f"/users/{quote(user, safe='')}").status_code == 204


def test_a_username_with_format_braces_spawns_with_its_own_label(stack, docker_client):
    """DockerSpawner formats container options with str.format; "brace{0}" must come out as itself
    (the GPU pool trusts the devhub.user label), not as another value."""
    session = stack.login(BRACE_USER)
    token = session.token()
    start_server(stack, token, BRACE_USER)
    (box,) = docker_client.containers.list(filters={"label": f"devhub.user={BRACE_USER}"})
    assert box.labels["devhub.user"] == BRACE_USER and box.labels["devhub.role"] == "user-server"
    assert DOCKER_NAME.match(box.name) and "{" not in box.name, box.name
    assert f"JUPYTERHUB_USER={BRACE_USER}" in box.attrs["Config"]["Env"]
    assert hub_api(stack, token, "GET", f"/users/{quote(BRACE_USER, safe='')}").json()["servers"][""]["ready"]
    stop_server(stack, token, BRACE_USER)
