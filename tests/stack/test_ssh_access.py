"""SSH follows the hub's authenticator, as an admin would use it: blocking a user or removing them
from the allowed users (a jupyterhub_config.d override and a hub restart) ends their live SSH
session within 60 s and refuses new ones without starting their server; so does deleting the key a
session logged in with; an account an admin created that never logged in on the web gets no SSH;
an expired hub login is answered with where to log in."""

from __future__ import annotations

import pytest

from stack_support import LiveSession, add_key, hub_api, hub_override, start_server, stop_server
from support import SshTarget


def server_of(stack, admin_token: str, user: str) -> dict | None:
    return hub_api(stack, admin_token, "GET", f"/users/{user}").json()["servers"].get("")


@pytest.mark.parametrize("override, why", [
    ("c.GenericOAuthenticator.blocked_users = {'bob'}", "bob is blocked on this hub"),
    ("c.GenericOAuthenticator.allowed_users = {'alice'}", "bob is no longer allowed on this hub"),
], ids=["blocked", "no-longer-allowed"])
def test_refused_user_loses_ssh(stack, bob_token, alice_token, docker_client, tmp_path, override, why):
    key, _ = add_key(stack, bob_token, "bob", tmp_path, "bob-laptop")
    start_server(stack, bob_token, "bob")
    session = LiveSession(SshTarget(stack.ssh_port, key.private, user="bob"))
    with hub_override(stack, docker_client, "refuse-bob.py", override):
        took, stderr = session.ended_within(60)
        assert f"devhub: your SSH access ended: {why}" in stderr, stderr
        stop_server(stack, alice_token, "bob")  # alice is an admin
        again = SshTarget(stack.ssh_port, key.private, user="bob", log_level="INFO").run("true", timeout=60)
        assert again.returncode == 255, again
        assert f"devhub: SSH refused: {why}" in again.stderr and "Permission denied (publickey)" in again.stderr
        assert server_of(stack, alice_token, "bob") is None  # his stopped server was not started
    print(f"live session of a refused user closed {took:.1f} s after the hub restarted with the override")
    # Lifted: bob is back.
    assert SshTarget(stack.ssh_port, key.private, user="bob").run("true", timeout=240).returncode == 0


def test_deleting_the_key_ends_its_sessions(stack, alice_token, tmp_path):
    key, key_id = add_key(stack, alice_token, "alice", tmp_path, "alice-old-laptop")
    session = LiveSession(SshTarget(stack.ssh_port, key.private, user="alice"))
    assert hub_api(stack, alice_token, "DELETE", f"/devhub/ssh/users/alice/keys/{key_id}").status_code == 204
    took, stderr = session.ended_within(60)
    assert "devhub: your SSH access ended: the SSH key you logged in with was removed from the hub" in stderr, stderr
    print(f"session closed {took:.1f} s after its key was deleted")


def test_admin_created_user_who_never_logged_in_gets_no_ssh(stack, alice_token, tmp_path):
    assert hub_api(stack, alice_token, "POST", "/users/carol").status_code in (201, 409)
    key, _ = add_key(stack, alice_token, "carol", tmp_path, "carol-key")  # alice is an admin
    refused = SshTarget(stack.ssh_port, key.private, user="carol", log_level="INFO").run("true", timeout=60)
    assert refused.returncode == 255
    assert "devhub: SSH refused: carol has not logged in on the web yet" in refused.stderr, refused.stderr
    assert server_of(stack, alice_token, "carol") is None


def test_expired_hub_login_says_where_to_log_in(stack, bob_token, alice_token, tmp_path):
    """The demo IdP forgets its tokens when it restarts, like a provider revoking them: the hub can
    no longer refresh bob's login, so it will not start his server until he logs in again."""
    key, _ = add_key(stack, bob_token, "bob", tmp_path, "bob-desktop")
    if server_of(stack, alice_token, "bob") is not None:
        stop_server(stack, alice_token, "bob")
    stack.compose("restart", "oidc")
    stack.compose("up", "--detach", "--wait", "oidc")
    try:
        ssh = SshTarget(stack.ssh_port, key.private, user="bob")
        expired = ssh.run("true", timeout=120)
        assert expired.returncode == 255
        assert f"your hub login has expired, so the hub cannot start your server: log in at {stack.url}/hub/login, " \
               "then connect again" in expired.stderr, expired.stderr
        stack.login("bob")  # what the message asks for
        assert ssh.run("true", timeout=240).returncode == 0
    finally:
        # Every stored login went stale with the IdP's restart (API tokens too, once the hub re-checks
        # them): alice logs in again as well, as she would, so the tests that follow do not fail with
        # this one.
        stack.login("alice")
