"""The SSH gateway (devhub/sshgw) end to end, with the real OpenSSH client. Fixtures (gateway_support):
a user-defined Docker network, two hardened user containers that trust the gateway's client key, and
the devhub/sshgw image routing several users to them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shlex
import socket as socket_module
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from gateway_support import (METRICS_PORT, STATE, audit_events, gateway, gateway_image, gw_env,  # noqa: F401 - fixtures
                             hub_gateway, scrape)
from support import KeyPair, SshTarget, exec_out, free_port, host_port, wait_until

# ---------------------------------------------------------------- sessions

def test_tensorflow_through_gateway(gateway, gw_env):
    result = gw_env.ssh(gateway, "alice").run('python -c "import tensorflow as tf; print(tf.__version__)"', timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2.9.3"


def test_the_relays_run_on_uvloop(gateway):
    """The image's gateway runs on uvloop (pinned in gateway/requirements.lock), as it says at start."""
    started = gateway.logs(stderr=True, stdout=False).decode()
    assert "; event loop uvloop" in started, started[-2000:]


def test_lands_in_the_users_container_as_jovyan(gateway, gw_env):
    out = gw_env.ssh(gateway, "alice").check("id -un; hostname")
    assert out.split()[0] == "jovyan"
    assert out.split()[1] == gw_env.containers["a"].container.attrs["Config"]["Hostname"]
    out = gw_env.ssh(gateway, "bob").check("hostname")
    assert out.strip() == gw_env.containers["b"].container.attrs["Config"]["Hostname"]


def test_exit_status_and_streaming_stdin(gateway, gw_env):
    ssh = gw_env.ssh(gateway, "alice")
    assert ssh.run("exit 3").returncode == 3
    data = "".join(f"line {i}\n" for i in range(20000))
    assert ssh.check("wc -l; exit 0", input=data).strip() == "20000"


def test_env_lang_is_passed(gateway, gw_env):
    ssh = gw_env.ssh(gateway, "alice")
    result = subprocess.run([*ssh.ssh_args("-o", "SendEnv=LC_DEVHUB_TEST"), "echo $LC_DEVHUB_TEST"],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "LC_DEVHUB_TEST": "x"})
    # sshd in the image decides (AcceptEnv); the gateway must neither fail nor leak other variables.
    assert result.returncode == 0, result.stderr


def test_signal_is_relayed(gateway, gw_env):
    import asyncssh

    async def scenario():
        async with asyncssh.connect("127.0.0.1", host_port(gateway, "2222/tcp"), username="alice",
                                    client_keys=[str(gw_env.users["alice"].private)], known_hosts=None,
                                    agent_path=None, config=None) as conn:
            proc = await conn.create_process("trap 'echo got-INT; exit 7' INT; echo ready; sleep 60 >/dev/null 2>&1 & wait")
            assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == "ready"
            proc.send_signal("INT")
            out = await asyncio.wait_for(proc.stdout.readline(), 30)
            await asyncio.wait_for(proc.wait_closed(), 30)
            return out.strip(), proc.exit_status

    assert asyncio.run(scenario()) == ("got-INT", 7)


def _tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], check=True, capture_output=True, text=True, timeout=30).stdout


def test_interactive_pty_and_window_resize(gateway, gw_env):
    ssh = gw_env.ssh(gateway, "alice")
    socket = f"devhub-test-{uuid.uuid4().hex[:8]}"
    command = " ".join(shlex.quote(a) for a in ssh.ssh_args("-tt"))
    _tmux(socket, "new-session", "-d", "-s", "gw", "-x", "100", "-y", "30", command)
    try:
        def pane() -> str:
            return _tmux(socket, "capture-pane", "-p", "-t", "gw")

        _tmux(socket, "send-keys", "-t", "gw", "echo $((6*7))-$TERM-$(tty)", "Enter")
        wait_until(lambda: re.search(r"^42-\S+-/dev/pts/\d+", pane(), re.M), 30, what="command output in the PTY")
        _tmux(socket, "send-keys", "-t", "gw", "stty size", "Enter")
        wait_until(lambda: re.search(r"^30 100\s*$", pane(), re.M), 15, what="stty size 30 100")
        _tmux(socket, "resize-window", "-t", "gw", "-x", "120", "-y", "40")
        _tmux(socket, "send-keys", "-t", "gw", "clear; stty size", "Enter")
        wait_until(lambda: re.search(r"^40 120\s*$", pane(), re.M), 15, what="stty size 40 120 after resize")
        _tmux(socket, "send-keys", "-t", "gw", "exit", "Enter")
        wait_until(lambda: subprocess.run(["tmux", "-L", socket, "has-session", "-t", "gw"],
                                          capture_output=True).returncode != 0, 15, what="session end")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)


# ---------------------------------------------------------------- forwarding

@pytest.fixture(scope="module")
def http_in_container(gateway, gw_env) -> int:
    port = 8765
    gw_env.ssh(gateway, "alice").check(
        f"mkdir -p /tmp/www && echo served-from-container > /tmp/www/index.html && cd /tmp/www && "
        f"{{ setsid python -m http.server {port} --bind 127.0.0.1 </dev/null >/dev/null 2>&1 & }}")
    return port


def _tunnel(ssh: SshTarget, *forward: str) -> subprocess.Popen:
    return subprocess.Popen(ssh.ssh_args("-N", "-o", "ExitOnForwardFailure=yes", *forward),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_local_forward(gateway, gw_env, http_in_container):
    local = free_port()
    tunnel = _tunnel(gw_env.ssh(gateway, "alice"), "-L", f"127.0.0.1:{local}:127.0.0.1:{http_in_container}")
    try:
        body = wait_until(lambda: requests.get(f"http://127.0.0.1:{local}/", timeout=5).text, 30, what="HTTP over -L")
        assert body.strip() == "served-from-container"
    finally:
        tunnel.terminate()
        tunnel.wait(10)


def test_dynamic_socks_forward(gateway, gw_env, http_in_container):
    local = free_port()
    tunnel = _tunnel(gw_env.ssh(gateway, "alice"), "-D", f"127.0.0.1:{local}")
    proxies = {"http": f"socks5h://127.0.0.1:{local}"}
    try:
        body = wait_until(lambda: requests.get(f"http://127.0.0.1:{http_in_container}/", proxies=proxies, timeout=5).text,
                          30, what="HTTP over SOCKS")
        assert body.strip() == "served-from-container"
    finally:
        tunnel.terminate()
        tunnel.wait(10)


def test_unix_socket_forward(gateway, gw_env):
    ssh = gw_env.ssh(gateway, "alice")
    server = ("import socketserver\n"
              "class H(socketserver.StreamRequestHandler):\n"
              "    def handle(self):\n"
              "        self.wfile.write(b'unix:' + self.rfile.readline())\n"
              "socketserver.UnixStreamServer('/tmp/devhub-echo.sock', H).serve_forever()\n")
    ssh.check("rm -f /tmp/devhub-echo.sock; cat > /tmp/echo_server.py; "
              "{ setsid python /tmp/echo_server.py </dev/null >/dev/null 2>&1 & }", input=server)
    local = free_port()
    tunnel = _tunnel(ssh, "-L", f"127.0.0.1:{local}:/tmp/devhub-echo.sock")
    try:
        def echo() -> bytes:
            with socket_module.create_connection(("127.0.0.1", local), timeout=5) as s:
                s.sendall(b"ping\n")
                return s.recv(100)

        assert wait_until(echo, 30, what="echo over direct-streamlocal") == b"unix:ping\n"
    finally:
        tunnel.terminate()
        tunnel.wait(10)


def test_vscode_pattern_socks_and_bash_on_stdin(gateway, gw_env):
    """VS Code Remote-SSH: `ssh -T -D PORT host bash`, a script on stdin starts the server, then all
    traffic goes through the SOCKS port while the bash session stays open."""
    ssh = gw_env.ssh(gateway, "alice")
    local = free_port()
    proc = subprocess.Popen(ssh.ssh_args("-T", "-D", f"127.0.0.1:{local}") + ["bash"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdin.write("mkdir -p /tmp/vsc && echo vscode-server-ok > /tmp/vsc/index.html && cd /tmp/vsc\n"
                         "{ setsid python -m http.server 8799 --bind 127.0.0.1 </dev/null >/dev/null 2>&1 & }\n"
                         "echo listeningOn==8799==\n")
        proc.stdin.flush()
        assert "listeningOn==8799==" in proc.stdout.readline()
        proxies = {"http": f"socks5h://127.0.0.1:{local}"}
        body = wait_until(lambda: requests.get("http://127.0.0.1:8799/", proxies=proxies, timeout=5).text, 30,
                          what="VS Code style server via SOCKS")
        assert body.strip() == "vscode-server-ok"
        proc.stdin.write("echo still-here\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "still-here"
    finally:
        proc.stdin.close()
        proc.wait(20)


def test_remote_forward_agent_and_x11_refused(gateway, gw_env):
    ssh = gw_env.ssh(gateway, "alice")
    result = ssh.run("true", "-N", "-o", "ExitOnForwardFailure=yes", "-R", f"127.0.0.1:{free_port()}:127.0.0.1:22",
                     timeout=30)
    assert result.returncode == 255 and "remote port forwarding failed" in result.stderr
    assert any(e["reason"] == "remote forwarding refused" and e.get("user") == "alice"
               for e in audit_events(gateway, "refused")), "the gateway refused it (not only the container's sshd)"
    out = ssh.check('echo "agent=[${SSH_AUTH_SOCK:-}] display=[${DISPLAY:-}]"', "-A", "-X", "-o", "LogLevel=QUIET")
    assert out.strip() == "agent=[] display=[]"


# ---------------------------------------------------------------- file transfer

def test_sftp_scp_rsync(gateway, gw_env, tmp_path):
    ssh = gw_env.ssh(gateway, "alice")
    port, opts = str(ssh.port), ssh.options()
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(3 * 1024 * 1024))
    batch = f"put {payload} /tmp/sftp.bin\nget /tmp/sftp.bin {tmp_path / 'back.bin'}\n"
    subprocess.run(["sftp", "-b", "-", "-P", port, *opts, "alice@127.0.0.1"], input=batch, text=True, check=True,
                   capture_output=True, timeout=120)
    assert (tmp_path / "back.bin").read_bytes() == payload.read_bytes()
    subprocess.run(["scp", "-P", port, *opts, str(payload), "alice@127.0.0.1:/tmp/scp.bin"], check=True,
                   capture_output=True, timeout=120)
    subprocess.run(["scp", "-P", port, *opts, "alice@127.0.0.1:/tmp/scp.bin", str(tmp_path / "scp-back.bin")],
                   check=True, capture_output=True, timeout=120)
    assert (tmp_path / "scp-back.bin").read_bytes() == payload.read_bytes()
    rsh = " ".join(shlex.quote(a) for a in ["ssh", "-p", port, *opts])
    (tmp_path / "tree").mkdir()
    for i in range(20):
        (tmp_path / "tree" / f"f{i}.txt").write_text(f"file {i}\n" * 100)
    subprocess.run(["rsync", "-a", "-e", rsh, f"{tmp_path / 'tree'}/", "alice@127.0.0.1:/tmp/rsynced/"], check=True,
                   capture_output=True, timeout=120)
    assert ssh.check("cat /tmp/rsynced/f7.txt | wc -l; sha256sum /tmp/sftp.bin | cut -c1-64").split() == \
        ["100", hashlib.sha256(payload.read_bytes()).hexdigest()]


# ---------------------------------------------------------------- concurrency, activity

def test_second_connection_reaches_the_same_container(gateway, gw_env):
    ssh = gw_env.ssh(gateway, "alice")
    first = subprocess.Popen(ssh.ssh_args() + ["echo $$ > /tmp/first.pid; hostname; sleep 20"],
                             stdout=subprocess.PIPE, text=True)
    try:
        host = first.stdout.readline().strip()
        second = ssh.check("hostname; cat /proc/$(cat /tmp/first.pid)/cmdline | tr '\\0' ' '")
        assert second.splitlines()[0] == host
        assert "sleep 20" in second or "first.pid" in second
    finally:
        first.terminate()
        first.wait(10)


def test_twenty_concurrent_sessions_across_five_users(gateway, gw_env):
    hostnames = {label: uc.container.attrs["Config"]["Hostname"] for label, uc in gw_env.containers.items()}
    expected_host = {u: hostnames["a" if u in ("u1", "u3", "u5") else "b"] for u in ("u1", "u2", "u3", "u4", "u5")}
    jobs = [(user, i) for i in range(4) for user in expected_host]

    def one(job):
        user, i = job
        result = gw_env.ssh(gateway, user).run(f"sleep 1; echo {user}-{i}-$(hostname)-$(({i}*{i}))", timeout=120)
        return job, result

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, jobs))
    for (user, i), result in results:
        assert result.returncode == 0, (user, i, result.stderr)
        assert result.stdout.strip() == f"{user}-{i}-{expected_host[user]}-{i * i}"


def test_activity_is_reported_only_while_data_flows(gateway, gw_env):
    """GATEWAY_ACTIVITY_INTERVAL=1: u4's connection, silent after its first line, is reported when it
    opens and then no more (a forgotten window must not keep a server from the idle culler), while
    u5's chattering session, the clock of this test, is reported every interval; a line typed to u4
    makes it active again."""
    def reports(user: str) -> int:
        return len([e for e in audit_events(gateway, "activity") if e.get("user") == user])

    def after_intervals(n: int) -> None:  # u5 reports once per interval: n more of them
        start = reports("u5")
        wait_until(lambda: reports("u5") >= start + n, 30, what=f"{n} more activity reports for u5")

    silent = subprocess.Popen(gw_env.ssh(gateway, "u4").ssh_args() + ["echo up; exec cat"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    busy = subprocess.Popen(gw_env.ssh(gateway, "u5").ssh_args() + ["while :; do echo tick; sleep 0.2; done"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert silent.stdout.readline().strip() == "up" and busy.stdout.readline().strip() == "tick"
        after_intervals(3)  # past the interval in which "up" flowed
        quiet = reports("u4")
        assert quiet >= 1
        after_intervals(3)
        assert reports("u4") == quiet, "a silent connection was reported as activity"
        silent.stdin.write("typing\n")
        silent.stdin.flush()
        assert silent.stdout.readline().strip() == "typing"
        wait_until(lambda: reports("u4") > quiet, 15, what="an activity report for u4 after traffic")
    finally:
        for proc in (silent, busy):
            proc.terminate()
            proc.wait(10)
    gw_env.ssh(gateway, "alice").check("echo audited", input="twelve bytes")
    fields = {"bytes_up", "bytes_down", "exit_status", "start", "end", "sid", "source"}
    ended = wait_until(lambda: [e for e in audit_events(gateway, "session_end") if e.get("user") == "alice"
                                and fields <= set(e) and e["bytes_up"] == 12], 10, what="audit line for the session")
    assert ended[-1]["exit_status"] == 0 and ended[-1]["bytes_down"] == len("audited\n")


# ---------------------------------------------------------------- metrics, a stopped server

def test_metrics_move_with_real_sessions(gateway, gw_env):
    """GET /metrics on the gateway's metrics alias, scraped from the host: an open session shows in the
    gauges; an exec session, its bytes and a wrong key are counted."""
    before = scrape(gateway)
    ssh = gw_env.ssh(gateway, "alice")
    held = subprocess.Popen(ssh.ssh_args() + ["echo open; exec cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert held.stdout.readline().strip() == "open"
        during = scrape(gateway)
    finally:
        held.stdin.close()
        held.wait(20)
    assert during[("devhub_gateway_user_connections", (("user", "alice"),))] >= 1
    assert during[("devhub_gateway_sessions", (("kind", "exec"),))] >= 1
    assert during[("devhub_gateway_connections", ())] >= 1 and during[("devhub_gateway_channels", ())] >= 1
    payload = "x" * 100_000
    result = ssh.run("cat", input=payload)
    assert result.returncode == 0 and result.stdout == payload and "devhub:" not in result.stderr
    wrong = gw_env.ssh(gateway, "alice", key=gw_env.users["bob"]).run("true", timeout=60)
    assert wrong.returncode == 255 and "Permission denied (publickey)" in wrong.stderr
    after = scrape(gateway)

    def moved(name: str, labels: tuple = ()) -> float:
        return after[(name, labels)] - before[(name, labels)]

    assert moved("devhub_gateway_sessions_total", (("kind", "exec"),)) >= 2
    assert moved("devhub_gateway_bytes_total", (("direction", "in"),)) >= len(payload)
    assert moved("devhub_gateway_bytes_total", (("direction", "out"),)) >= len(payload)
    assert moved("devhub_gateway_auth_failures_total", (("reason", "bad_key"),)) >= 1
    assert moved("devhub_gateway_auth_failures_total", (("reason", "unknown_user"),)) == 0  # alice exists
    port = host_port(gateway, f"{METRICS_PORT}/tcp")
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 404
    # Bound to its alias's address only: not on the container's other addresses (users' networks in compose).
    probe = exec_out(gateway, ["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {METRICS_PORT}), 5)"],
                     check=False)
    assert "ConnectionRefusedError" in probe, probe


IDLE_CULL = {"reason": "idle for more than 30 s (IDLE_CULL_TIMEOUT)", "by": "jupyterhub-idle-culler",
             "at": "2026-01-01T00:00:00Z"}


def test_session_is_told_why_its_server_stopped(gw_env, hub_gateway):
    """Bob's sshd goes away under his session (as when the culler stops his container): the session
    gets one line on stderr with the hub's reason, asked again while the hub's stop was still under
    way; with no reason from the hub (his server runs again), a generic line."""
    gw, hub = hub_gateway
    container = gw_env.containers["b"].container

    def lose_server_under_a_session(hub_says) -> subprocess.CompletedProcess:
        """A session of bob's; then `hub_says()` sets what the hub answers, and his sshd is killed."""
        proc = subprocess.Popen(gw_env.ssh(gw, "bob").ssh_args() + ['echo "ready $PPID"; exec cat'],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            sshd = proc.stdout.readline().split()[1]  # the session's sshd, owner of the gateway's connection
            hub_says()
            exec_out(container, ["kill", "-KILL", sshd])
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    asked = []

    def culled_with_the_stop_under_way():
        asked.append(len(hub.gets("/bob/route")))
        hub.stop("bob", IDLE_CULL, pending_answers=2)

    culled = lose_server_under_a_session(culled_with_the_stop_under_way)
    assert culled.returncode == 255
    assert culled.stderr.strip().splitlines()[-1] == (
        "devhub: your server was stopped: idle for more than 30 s (IDLE_CULL_TIMEOUT) by jupyterhub-idle-culler; "
        "connect again to start it."), culled.stderr
    assert culled.stderr.count("devhub:") == 1, culled.stderr
    assert len(hub.gets("/bob/route")) - asked[0] >= 3  # two answers with the stop pending, then its reason
    lost = wait_until(lambda: [e for e in audit_events(gw, "server_lost") if e.get("user") == "bob"], 10,
                      what="the server_lost audit line")
    assert lost[-1]["reason"] == "idle for more than 30 s (IDLE_CULL_TIMEOUT) by jupyterhub-idle-culler"

    # Connecting again starts it; when it goes away again the route answers 200 (running): nothing to say why.
    generic = lose_server_under_a_session(lambda: hub.running.add("bob"))
    assert generic.returncode == 255
    lines = generic.stderr.strip().splitlines()
    assert lines[0] == "devhub: your server is not running; starting it", generic.stderr
    assert [line for line in lines if "stopped" in line] == lines[-1:] == \
        ["devhub: your server stopped; connect again to start it."], generic.stderr


# ---------------------------------------------------------------- authentication and hardening

def test_alice_key_cannot_log_in_as_bob(gateway, gw_env):
    result = gw_env.ssh(gateway, "bob", key=gw_env.users["alice"]).run("true", timeout=60)
    assert result.returncode == 255 and "Permission denied (publickey)" in result.stderr


@pytest.mark.parametrize("algorithm, accepted", [("ssh-rsa", False), ("rsa-sha2-256", True), ("rsa-sha2-512", True)])
def test_rsa_key_signing_with_sha1_is_refused(gateway, gw_env, algorithm, accepted):
    """The same 3072-bit RSA key: a SHA-1 `ssh-rsa` signature is refused by the check itself (asyncssh's
    client sends it when told to, whatever the server advertises); SHA-2 signatures log in."""
    import asyncssh

    async def attempt() -> str:
        key = asyncssh.read_private_key(str(gw_env.users["rsauser"].private))
        async with asyncssh.connect("127.0.0.1", host_port(gateway, "2222/tcp"), username="rsauser", known_hosts=None,
                                    client_keys=[key], signature_algs=[algorithm], agent_path=None) as conn:
            return (await conn.run("echo in", check=True)).stdout.strip()

    if accepted:
        assert asyncio.run(attempt()) == "in"
    else:
        with pytest.raises(asyncssh.PermissionDenied):
            asyncio.run(attempt())
        assert any(e.get("user") == "rsauser" for e in audit_events(gateway, "auth_failed"))


def test_unknown_user_wrong_key_and_password_fail_alike(gateway, gw_env):
    port = host_port(gateway, "2222/tcp")
    unknown = SshTarget(port, gw_env.users["alice"].private, user="nosuchuser").run("true", timeout=60)
    wrong = gw_env.ssh(gateway, "alice", key=gw_env.users["bob"]).run("true", timeout=60)
    password = subprocess.run(
        ["ssh", "-p", str(port), "-o", "PreferredAuthentications=password,keyboard-interactive",
         "-o", "PubkeyAuthentication=no", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "alice@127.0.0.1", "true"], capture_output=True, text=True, timeout=30)
    for result in (unknown, wrong, password):
        assert result.returncode == 255
        assert result.stderr.strip().endswith("Permission denied (publickey)."), result.stderr

    # Same timing: an unknown user's refusal takes as long as a known user's wrong key.
    import asyncssh

    async def refusal_time(user: str, key: KeyPair) -> float:
        t0 = time.monotonic()
        with pytest.raises(asyncssh.PermissionDenied):
            async with asyncssh.connect("127.0.0.1", port, username=user, client_keys=[str(key.private)],
                                        known_hosts=None, agent_path=None, config=None):
                pass
        return time.monotonic() - t0

    async def timings():
        return ([await refusal_time("nosuchuser2", gw_env.users["alice"]) for _ in range(2)],
                [await refusal_time("alice", gw_env.users["bob"]) for _ in range(2)])

    unknown_t, wrong_t = asyncio.run(timings())
    assert min(unknown_t + wrong_t) >= 0.45  # GATEWAY_FAIL_DELAY (0.5 s, 0-10 % jitter)
    assert abs(sorted(unknown_t)[0] - sorted(wrong_t)[0]) < 0.25, (unknown_t, wrong_t)


def test_container_host_key_is_verified(gateway, gw_env):
    result = gw_env.ssh(gateway, "mallory").run("echo should-not-run", timeout=60)
    assert result.returncode == 255
    assert "should-not-run" not in result.stdout
    assert "host key does not match" in result.stderr


def test_a_named_server_is_reached_with_user_plus_server(gateway, gw_env):
    """alice+exp1 logs in with alice's key and lands in exp1's container, not in her default one."""
    alice = gw_env.users["alice"]
    exp1 = gw_env.ssh(gateway, "alice+exp1", key=alice).check("hostname").strip()
    assert exp1 == gw_env.containers["b"].container.attrs["Config"]["Hostname"]
    assert gw_env.ssh(gateway, "alice").check("hostname").strip() == gw_env.containers["a"].container.attrs["Config"]["Hostname"]
    # bob's key is not alice's: the server part gives no way in.
    refused = gw_env.ssh(gateway, "alice+exp1", key=gw_env.users["bob"]).run("true", timeout=60)
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr
    # A name no server can have is refused with the rule, after alice's key is checked.
    bad = gw_env.ssh(gateway, "alice+Bad_Name", key=alice).run("true", timeout=60)
    assert bad.returncode == 255, bad.stderr
    assert "devhub: invalid server name 'Bad_Name' after '+' in the SSH user name: use 1-32 characters" in bad.stderr


def test_user_without_server_gets_a_clear_message(gateway, gw_env):
    result = gw_env.ssh(gateway, "ghost").run("true", timeout=60)
    assert result.returncode == 255 and "devhub: no server is configured for ghost" in result.stderr


def test_ssh_audit_reports_no_failures(gateway, venv_bin):
    result = subprocess.run([str(venv_bin / "ssh-audit"), "-n", "-p", str(host_port(gateway, "2222/tcp")), "127.0.0.1"],
                            capture_output=True, text=True, timeout=120)
    assert "SSH-2.0-devhub-sshgw" in result.stdout, result.stdout + result.stderr
    assert "[fail]" not in result.stdout, result.stdout
    assert "curve25519-sha256" in result.stdout and "ssh-ed25519" in result.stdout


def test_garbage_and_aborted_handshakes_leave_it_serving(gateway, gw_env):
    port = host_port(gateway, "2222/tcp")

    def abuse(i: int) -> None:
        try:
            with socket_module.create_connection(("127.0.0.1", port), timeout=5) as s:
                if i % 4 == 0:
                    s.sendall(os.urandom(512))
                elif i % 4 == 1:
                    s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                    s.recv(64)
                elif i % 4 == 2:
                    s.sendall(b"SSH-2.0-x\r\n" + os.urandom(2048))
                # i % 4 == 3: connect and close at once
        except OSError:
            pass

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(abuse, range(200)))
    assert gw_env.ssh(gateway, "alice").check("echo still-serving").strip() == "still-serving"
    gateway.reload()
    assert gateway.status == "running"


def test_key_files_in_state_volume(gateway):
    out = exec_out(gateway, ["sh", "-c", f"stat -c '%a %U %n' {STATE}/*"])
    modes = dict(reversed(line.split(" ", 1)) for line in out.strip().splitlines())
    modes = {k.split("/")[-1]: v.split()[0] for k, v in modes.items()}
    assert modes["ssh_host_ed25519_key"] == "600" and modes["gateway_client_key"] == "600"
    assert modes["gateway_client_key.pub"] == "644"


# ---------------------------------------------------------------- separate gateway instances

def test_rate_limit_engages_after_repeated_failures(gw_env):
    gw = gw_env.start_gateway({"GATEWAY_AUTH_FAILURES": "10", "GATEWAY_FAIL_DELAY": "0.1"})
    wrong = gw_env.ssh(gw, "alice", key=gw_env.users["bob"])
    for _ in range(10):
        assert wrong.run("true", timeout=60).returncode == 255
    result = gw_env.ssh(gw, "alice").run("echo in", timeout=60)  # right key, blocked address
    # Dropped at accept: the client never gets the gateway's banner, let alone a key exchange.
    assert result.returncode == 255 and "in" not in result.stdout.split()
    assert "kex_exchange_identification" in result.stderr, result.stderr
    assert any(e.get("reason") == "address blocked" for e in audit_events(gw, "refused"))


def test_gateway_restart_accepts_new_connections_within_seconds(gw_env):
    gw = gw_env.start_gateway()
    ssh = gw_env.ssh(gw, "alice")
    assert ssh.check("echo before").strip() == "before"
    keyscan = lambda: subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(host_port(gw, "2222/tcp")), "127.0.0.1"],
                                     capture_output=True, text=True, timeout=20).stdout.split()[-1]
    host_key = keyscan()
    gw.restart(timeout=10)
    t0 = time.monotonic()
    ssh = gw_env.ssh(gw, "alice")  # the published port may change on restart
    out = wait_until(lambda: gw_env.ssh(gw, "alice").run("echo after", timeout=20).stdout.strip() == "after", 20,
                     interval=0.2, what="login after restart")
    assert out and time.monotonic() - t0 < 15
    assert keyscan() == host_key  # the host key persisted in the state volume
