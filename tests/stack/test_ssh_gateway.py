"""SSH through the stack's gateway: keys added in the hub, `ssh -p SSH_PORT alice@host` reaches
alice's container (started on demand)."""

import subprocess

from stack_support import hub_api, stop_server
from support import SshTarget, make_keypair


def test_key_api_and_ssh_to_a_stopped_server(stack, alice, alice_token, tmp_path):
    key = make_keypair(tmp_path, name="alice-laptop")
    bad = hub_api(stack, alice_token, "POST", "/devhub/ssh/users/alice/keys",
                  json={"name": "evil", "key": 'command="sh" ' + key.public_line})
    assert bad.status_code == 400 and "options" in bad.json()["message"]
    added = hub_api(stack, alice_token, "POST", "/devhub/ssh/users/alice/keys", json={"name": "laptop", "key": key.public_line})
    assert added.status_code == 201, added.text
    listed = hub_api(stack, alice_token, "GET", "/devhub/ssh/users/alice/keys").json()
    assert [e["name"] for e in listed["entries"]] == ["laptop"]
    page = alice.session.get(f"{stack.url}/hub/ssh-keys", timeout=30)
    assert page.status_code == 200 and "Port" in page.text and str(stack.ssh_port) in page.text

    servers = hub_api(stack, alice_token, "GET", "/users/alice").json()["servers"]
    if "" in servers:
        stop_server(stack, alice_token, "alice")
    ssh = SshTarget(stack.ssh_port, key.private, user="alice")
    result = ssh.run('python -c "import tensorflow as tf; print(tf.__version__)"', timeout=240)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2.9.3"
    assert ssh.run("exit 3").returncode == 3
    # bob cannot use alice's key.
    assert SshTarget(stack.ssh_port, key.private, user="bob").run("true").returncode == 255

    entry = listed["entries"][0]["id"]
    assert hub_api(stack, alice_token, "DELETE", f"/devhub/ssh/users/alice/keys/{entry}").status_code == 204
    assert ssh.run("true").returncode == 255


def test_hub_restart_does_not_cut_a_live_ssh_session(stack, alice_token, tmp_path):
    key = make_keypair(tmp_path, name="alice-desktop")
    added = hub_api(stack, alice_token, "POST", "/devhub/ssh/users/alice/keys", json={"name": "desktop", "key": key.public_line})
    assert added.status_code == 201, added.text
    ssh = SshTarget(stack.ssh_port, key.private, user="alice")
    session = subprocess.Popen(ssh.ssh_args() + ["while read line; do echo got-$line; done"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        session.stdin.write("one\n")
        assert session.stdout.readline().strip() == "got-one"
        stack.restart_hub()
        session.stdin.write("two\n")
        assert session.stdout.readline().strip() == "got-two"
    finally:
        session.stdin.close()
        assert session.wait(30) == 0
