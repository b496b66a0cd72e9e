"""Disk usage, as an admin and a user see it: a user above USER_HOME_SOFT_LIMIT is warned on the
hub's home page and when an SSH shell opens; admins see every home's size (page and API)."""

from __future__ import annotations

import subprocess

import pytest

from stack_support import hub_api, start_server, user_container
from support import SshTarget, exec_out, make_keypair, wait_until

NOTICE = "above the soft limit of 8.0 MiB"


@pytest.fixture
def soft_limit(stack):
    """The hub with an 8 MiB soft limit per home, measured every 5 s; back to the stack's own after."""
    stack.recreate_hub(USER_HOME_SOFT_LIMIT="8m", DISK_USAGE_INTERVAL="5")
    try:
        yield
    finally:
        stack.recreate_hub()


def test_a_user_above_the_soft_limit_is_warned_and_admins_see_it(stack, soft_limit, alice, bob, alice_token, docker_client,
                                                                    tmp_path):
    start_server(stack, alice_token, "alice")
    box = user_container(docker_client, "alice")
    exec_out(box, ["sh", "-c", "head -c 12m /dev/urandom > /home/jovyan/big.bin"], user="1000")
    try:
        def alice_over():
            report = hub_api(stack, alice_token, "GET", "/devhub/disk").json()
            entry = next(u for u in report["users"] if u["name"] == "alice")
            return entry["over_soft_limit"] and entry

        entry = wait_until(alice_over, 90, interval=1, what="the hub to measure alice's home above the soft limit")
        assert entry["bytes"] >= 12 * 1024**2 and entry["volume"] == "devhubtest-home-alice"
        assert hub_api(stack, alice_token, "GET", "/devhub/disk").json()["free_bytes"] > 0

        home = alice.session.get(f"{stack.url}/hub/home", timeout=30)
        assert 'id="devhub-disk-notice"' in home.text and NOTICE in home.text
        assert 'id="devhub-disk-usage-link"' in home.text  # alice is an admin
        page = alice.session.get(f"{stack.url}/hub/disk-usage", timeout=30)
        assert page.status_code == 200 and "devhubtest-home-alice" in page.text and "above soft limit" in page.text
        refused = bob.session.get(f"{stack.url}/hub/disk-usage", timeout=30)
        assert refused.status_code == 403 and "Only admins" in refused.text
        assert NOTICE not in bob.session.get(f"{stack.url}/hub/home", timeout=30).text

        key = make_keypair(tmp_path, name="alice-disk")
        added = hub_api(stack, alice_token, "POST", "/devhub/ssh/users/alice/keys", json={"name": "disk", "key": key.public_line})
        assert added.status_code == 201
        shell = subprocess.run([*SshTarget(stack.ssh_port, key.private, user="alice").ssh_args("-tt")], input="exit\n",
                               capture_output=True, text=True, timeout=120)
        assert shell.returncode == 0 and "devhub: Your home directory uses" in shell.stderr and NOTICE in shell.stderr, shell
        hub_api(stack, alice_token, "DELETE", f"/devhub/ssh/users/alice/keys/{added.json()['id']}")
    finally:
        exec_out(box, ["rm", "-f", "/home/jovyan/big.bin"], user="1000")
