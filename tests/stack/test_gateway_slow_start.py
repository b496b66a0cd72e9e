"""The SSH gateway on the real stack while one user's server is slow to start (an image pull, a
big home): six of that user's connections wait for it, and another user's login is not delayed by
them. (One start in flight per user: tests/gateway/test_gateway_units.py.)"""

from __future__ import annotations

import subprocess
import time

from stack_support import hub_api, hub_override, start_server, stop_server
from support import SshTarget, exec_out, make_keypair, wait_until

# An admin's override that holds alice's next start before the container is created, until the test
# opens a gate (a FIFO in the hub's /tmp: opening it for reading blocks until a writer comes).
GATE = "/tmp/alice-start-gate"
SLOW_START = f"""
import asyncio, os
if not os.path.exists({GATE!r}):
    os.mkfifo({GATE!r})
async def slow_for_alice(spawner):
    if spawner.user.name == "alice":
        await asyncio.get_running_loop().run_in_executor(None, lambda: open({GATE!r}).read())
c.Spawner.pre_spawn_hook = slow_for_alice
"""


def add_key(stack, token, user, tmp_path):
    key = make_keypair(tmp_path, name=f"{user}-slow-start")
    added = hub_api(stack, token, "POST", f"/devhub/ssh/users/{user}/keys", json={"name": "slow-start", "key": key.public_line})
    assert added.status_code == 201, added.text
    return key, added.json()["id"]


def test_six_waiting_connections_do_not_delay_another_users_login(stack, alice_token, bob_token, docker_client, tmp_path):
    alice_key, alice_key_id = add_key(stack, alice_token, "alice", tmp_path)
    bob_key, bob_key_id = add_key(stack, bob_token, "bob", tmp_path)
    start_server(stack, bob_token, "bob")
    if hub_api(stack, alice_token, "GET", "/users/alice").json()["servers"].get(""):
        stop_server(stack, alice_token, "alice")
    with hub_override(stack, docker_client, "slow-start.py", SLOW_START):
        waiting = [subprocess.Popen(SshTarget(stack.ssh_port, alice_key.private, user="alice").ssh_args() + ["true"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
        wait_until(lambda: hub_api(stack, alice_token, "GET", "/users/alice").json()["servers"].get("", {}).get("pending"),
                   30, interval=0.2, what="alice's server start to be pending")
        bob = SshTarget(stack.ssh_port, bob_key.private, user="bob")
        timings = []
        for _ in range(3):
            started = time.monotonic()
            assert bob.check("echo bob-is-in", timeout=30).strip() == "bob-is-in"
            timings.append(time.monotonic() - started)
        assert all(p.poll() is None for p in waiting)  # alice's six were still waiting meanwhile
        print(f"bob's logins while alice's six connections waited: {', '.join(f'{t:.2f}' for t in timings)} s")
        assert max(timings) < 2, timings
        # alice's server may start now: its connections, still waiting, go through.
        exec_out(stack.container(docker_client, "hub"), ["timeout", "30", "sh", "-c", f"echo open > {GATE}"])
        results = [p.communicate(timeout=240) for p in waiting]
        assert all(p.returncode == 0 for p in waiting), results
        assert all("your server is not running; starting it" in err for _, err in results), results
    for user, token, key_id in (("alice", alice_token, alice_key_id), ("bob", bob_token, bob_key_id)):
        hub_api(stack, token, "DELETE", f"/devhub/ssh/users/{user}/keys/{key_id}")
