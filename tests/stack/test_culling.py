"""Culling that frees resources, as two users see it with a 30 s idle timeout: alice's SSH window is
open but silent, so her server is culled and her session is told why in one line; bob's session has
traffic, so his server outlives several cull passes."""

from __future__ import annotations

import time

import pytest

from stack_support import LiveSession, add_key, hub_api, start_server, stop_server
from support import SshTarget

TIMEOUT = 30


@pytest.fixture
def short_idle_timeout(stack, alice_token):
    # Servers from earlier tests carry old activity: the culler's first pass would take them at once.
    for user in ("alice", "bob"):
        stop_server(stack, alice_token, user)  # alice is an admin
    stack.recreate_hub(IDLE_CULL_TIMEOUT=str(TIMEOUT))
    try:
        yield
    finally:
        stack.recreate_hub()


def running(stack, admin_token: str, user: str) -> bool:
    return bool(hub_api(stack, admin_token, "GET", f"/users/{user}").json()["servers"].get("", {}).get("ready"))


def test_silent_ssh_lets_the_server_go_traffic_keeps_it(stack, short_idle_timeout, alice_token, bob_token, tmp_path):
    alice_key, alice_key_id = add_key(stack, alice_token, "alice", tmp_path, "alice-forgotten-window")
    bob_key, bob_key_id = add_key(stack, bob_token, "bob", tmp_path, "bob-training")
    start_server(stack, alice_token, "alice")
    start_server(stack, bob_token, "bob")
    started = time.monotonic()
    silent = LiveSession(SshTarget(stack.ssh_port, alice_key.private, user="alice"))
    chatty = LiveSession(SshTarget(stack.ssh_port, bob_key.private, user="bob"),
                         command="while true; do echo tick; sleep 2; done")
    try:
        took, stderr = silent.ended_within(TIMEOUT * 6)
        assert not running(stack, alice_token, "alice")
        notice = [line for line in stderr.splitlines() if line.startswith("devhub: your server")]
        assert notice == [f"devhub: your server was stopped: idle for more than {TIMEOUT} s (IDLE_CULL_TIMEOUT) "
                          "by jupyterhub-idle-culler; connect again to start it."], stderr
        # bob's session printed all along: his server is still there, well past the timeout.
        while time.monotonic() - started < 2.5 * TIMEOUT:
            assert chatty.process.stdout.readline() == "tick\n", chatty.process.stderr.read()
        assert running(stack, alice_token, "bob") and chatty.process.poll() is None
    finally:
        chatty.process.kill()
        silent.process.kill()
        for user, token, key_id in (("alice", alice_token, alice_key_id), ("bob", bob_token, bob_key_id)):
            hub_api(stack, token, "DELETE", f"/devhub/ssh/users/{user}/keys/{key_id}")  # as other tests expect
    print(f"alice's silent session ended {took:.0f} s after it opened; bob's server ran "
          f"{time.monotonic() - started:.0f} s with traffic")
