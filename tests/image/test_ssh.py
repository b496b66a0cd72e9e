"""sshd in the user container, driven by the real OpenSSH client and by paramiko."""

import json
import re
import subprocess

import paramiko
import pytest
import requests

from conftest import start_user_container
from support import SshTarget, free_port, make_keypair, wait_until


def test_key_login_with_openssh(user_container, keys):
    out = user_container.ssh(keys["user"]).check("id -u; id -g; echo $HOME")
    assert out.split() == ["1000", "100", "/home/jovyan"]


def test_key_login_with_paramiko(user_container, keys):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", user_container.ssh_port, "jovyan", key_filename=str(keys["user"].private),
                   look_for_keys=False, allow_agent=False, timeout=10)
    try:
        _, stdout, _ = client.exec_command("echo hello-from-$(whoami)")
        assert stdout.read().decode().strip() == "hello-from-jovyan"
        assert stdout.channel.recv_exit_status() == 0
        assert client.get_transport().get_remote_server_key().get_name() == "ssh-ed25519"
    finally:
        client.close()


def test_exit_status_is_returned(user_container, keys):
    assert user_container.ssh(keys["user"]).run("exit 3").returncode == 3


def test_wrong_key_is_refused(user_container, keys):
    result = user_container.ssh(keys["other"]).run("true")
    assert result.returncode == 255 and "Permission denied" in result.stderr


def test_root_login_is_refused(user_container, keys):
    result = user_container.ssh(keys["user"], user="root").run("true")
    assert result.returncode == 255 and "Permission denied" in result.stderr


def test_password_and_keyboard_interactive_are_not_offered(user_container, keys):
    transport = paramiko.Transport(("127.0.0.1", user_container.ssh_port))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            transport.auth_password("jovyan", "jovyan")
        assert refused.value.allowed_types == ["publickey"]
    finally:
        transport.close()
    result = subprocess.run(
        ["ssh", "-p", str(user_container.ssh_port), "-o", "PreferredAuthentications=password,keyboard-interactive",
         "-o", "PubkeyAuthentication=no", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "jovyan@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 255 and "Permission denied (publickey)" in result.stderr


def test_pty_session(user_container, keys):
    out = user_container.ssh(keys["user"]).check("tty; stty size", "-tt")
    assert re.search(r"^/dev/pts/\d+", out, re.M), out


def test_local_forward_reaches_http_server_in_container(user_container, keys):
    ssh = user_container.ssh(keys["user"])
    ssh.check("mkdir -p /tmp/www && echo served-from-container > /tmp/www/index.html && cd /tmp/www && "
              "{ setsid python -m http.server 8765 --bind 127.0.0.1 </dev/null >/dev/null 2>&1 & }")
    local = free_port()
    tunnel = subprocess.Popen(ssh.ssh_args("-N", "-L", f"127.0.0.1:{local}:127.0.0.1:8765", "-o", "ExitOnForwardFailure=yes"))
    try:
        body = wait_until(lambda: requests.get(f"http://127.0.0.1:{local}/", timeout=2).text, 30, what="tunnelled HTTP")
        assert body.strip() == "served-from-container"
    finally:
        tunnel.terminate()
        tunnel.wait(10)


def test_remote_forward_agent_and_x11_are_refused(user_container, keys):
    ssh = user_container.ssh(keys["user"])
    result = ssh.run("true", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:9999:127.0.0.1:22")
    assert result.returncode == 255 and "remote port forwarding failed" in result.stderr
    # Agent forwarding requested: the session gets no SSH_AUTH_SOCK.
    assert ssh.check("echo auth=${SSH_AUTH_SOCK:-none}", "-A").strip() == "auth=none"


def test_sftp_and_scp(user_container, keys, tmp_path):
    ssh = user_container.ssh(keys["user"])
    payload = tmp_path / "payload.bin"
    payload.write_bytes(bytes(range(256)) * 4096)
    batch = tmp_path / "batch"
    batch.write_text(f"put {payload} upload.bin\nget upload.bin {tmp_path}/back.bin\n")
    base = ["-P", str(ssh.port), *ssh.options()]
    sftp = subprocess.run(["sftp", "-b", str(batch), *base, "jovyan@127.0.0.1"], capture_output=True, text=True, timeout=60)
    assert sftp.returncode == 0, sftp.stderr
    assert (tmp_path / "back.bin").read_bytes() == payload.read_bytes()
    scp = subprocess.run(["scp", *base, str(payload), "jovyan@127.0.0.1:scp.bin"], capture_output=True, text=True, timeout=60)
    assert scp.returncode == 0, scp.stderr
    assert ssh.check("sha256sum scp.bin upload.bin | cut -d' ' -f1 | uniq | wc -l").strip() == "1"


def test_ssh_audit_reports_no_failing_algorithm(user_container, venv_bin):
    result = subprocess.run([str(venv_bin / "ssh-audit"), "-j", "-p", str(user_container.ssh_port), "127.0.0.1"],
                            capture_output=True, text=True, timeout=60)
    report = json.loads(result.stdout)
    failures = [
        f"{kind}: {alg['algorithm']} {alg['notes'].get('fail')}"
        for kind in ("kex", "key", "enc", "mac")
        for alg in report.get(kind, [])
        if alg.get("notes", {}).get("fail")
    ]
    assert failures == []
    assert {a["algorithm"] for a in report["key"]} == {"ssh-ed25519"}


def test_session_environment_matches_jupyter_without_hub_secrets(resources, image, keys):
    box = start_user_container(resources, image, authorized_keys=keys["user"].public_line,
                               environment={"JUPYTERHUB_API_TOKEN": "secret-token-123",
                                            "TF_FORCE_GPU_ALLOW_GROWTH": "true"},
                               command=["jupyter", "lab"])
    env = dict(line.split("=", 1) for line in box.ssh(keys["user"]).check("env").splitlines() if "=" in line)
    assert env["PATH"].startswith("/opt/devhub/venv/bin:")
    assert env["CUDA_CACHE_PATH"] == "/home/jovyan/.cache/nv/ComputeCache"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert "secret-token-123" not in "".join(env.values())
    assert "LD_LIBRARY_PATH" not in env


class TestAuthorizedKeysFromSpawner:
    """What the spawner passes is validated: injected options or extra keys never reach sshd."""

    @pytest.fixture(scope="class")
    def box(self, module_resources, image, keys, tmp_path_factory):
        directory = tmp_path_factory.mktemp("inject")
        injected = make_keypair(directory, name="injected")
        smuggled = make_keypair(directory, name="smuggled")
        value = "\n".join([
            'command="touch /tmp/pwned" ' + injected.public_line,
            keys["user"].public_line.rsplit(" ", 1)[0] + " " + smuggled.public_line,
            keys["ecdsa"].public_line,
            keys["rsa2048"].public_line,
        ])
        box = start_user_container(module_resources, image, authorized_keys=value)
        return box, injected, smuggled

    def test_options_line_is_rejected(self, box):
        container, injected, _ = box
        assert container.ssh(injected).run("true").returncode == 255
        assert "options before the key" in container.container.logs().decode()

    def test_second_key_in_one_value_is_rejected(self, box, keys):
        container, _, smuggled = box
        assert container.ssh(smuggled).run("true").returncode == 255
        # The line that carried it is dropped whole: the first key on it cannot log in either.
        assert container.ssh(keys["user"]).run("true").returncode == 255
        assert "second key" in container.container.logs().decode()

    def test_weak_rsa_rejected_and_valid_key_accepted(self, box, keys):
        container, _, _ = box
        assert container.ssh(keys["rsa2048"]).run("true").returncode == 255
        assert container.ssh(keys["ecdsa"]).check("echo ok").strip() == "ok"
        mode = container.ssh(keys["ecdsa"]).check("stat -c '%a %U' /run/devhub/authorized_keys").split()
        assert mode == ["600", "jovyan"]


def test_no_keys_means_sshd_runs_and_nobody_logs_in(resources, image, keys):
    box = start_user_container(resources, image, authorized_keys="")
    assert "0 authorized SSH key(s)" in box.container.logs().decode()
    result = box.ssh(keys["user"]).run("true")
    assert result.returncode == 255 and "Permission denied" in result.stderr


def test_host_key_survives_recreation_on_the_same_volume(resources, image, keys):
    def host_key(port):
        out = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"],
                             capture_output=True, text=True, timeout=30).stdout
        return out.split()[-1]

    first = start_user_container(resources, image, authorized_keys=keys["user"].public_line)
    before = host_key(first.ssh_port)
    resources.remove_container(first.container)
    second = start_user_container(resources, image, authorized_keys=keys["user"].public_line,
                                  home=first.home, datasets=first.datasets)
    assert host_key(second.ssh_port) == before
    other = start_user_container(resources, image, authorized_keys=keys["user"].public_line)
    assert host_key(other.ssh_port) != before


def test_many_simultaneous_connections_are_all_accepted(user_container, keys):
    # The gateway opens one upstream connection per client session, often many at once.
    ssh = user_container.ssh(keys["user"])
    procs = [subprocess.Popen([*ssh.ssh_args(), f"echo conn-{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(16)]
    results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    assert [rc for _, rc in results] == [0] * 16, [err for (_, err), _ in results]
    assert sorted(out.strip() for (out, _), _ in results) == sorted(f"conn-{i}" for i in range(16))
