"""Named servers on the real stack: alice runs a CPU server and a training server side by side (one
home), reaches a stopped named server by SSH as alice+exp1 (started on demand, scp and -L too), is
refused a fourth server and an unknown one with clear messages, and sees the short-timeout profile's
server culled first."""

from __future__ import annotations

import html
import re
import subprocess
import time

import pytest
import requests

from stack_support import add_key, hub_api, server_path, start_server, stop_server
from support import SshTarget, free_port, wait_until
from test_monitoring import query as prometheus_query

PREFIX = "devhubtest-user-"
PROFILES = "/srv/devhub-test-profiles/"


def servers(stack, token: str, user: str = "alice") -> dict:
    return hub_api(stack, token, "GET", f"/users/{user}").json()["servers"]


def remove_named_servers(stack, token: str, user: str = "alice") -> None:
    for name in list(servers(stack, token, user)):
        if name:
            stop_server(stack, token, user, server=name)
    model = hub_api(stack, token, "GET", f"/users/{user}?include_stopped_servers=1").json()
    for name in model["servers"]:
        if name:
            response = hub_api(stack, token, "DELETE", server_path(user, name), json={"remove": True})
            assert response.status_code in (202, 204), response.text


@pytest.fixture
def profiles(stack, alice_token):
    """The hub with two profiles (tests/stack/profiles/); alice starts with no server."""
    stop_server(stack, alice_token, "alice")
    remove_named_servers(stack, alice_token)

    def use(name: str, **env: str) -> None:
        stack.recreate_hub(PROFILES=PROFILES + name, **env)

    try:
        yield use
    finally:
        remove_named_servers(stack, alice_token)
        stack.recreate_hub()


@pytest.fixture
def alice_key(stack, alice_token, tmp_path):
    key, key_id = add_key(stack, alice_token, "alice", tmp_path, "alice-named")
    yield key
    hub_api(stack, alice_token, "DELETE", f"/devhub/ssh/users/alice/keys/{key_id}")  # test_ssh_gateway counts keys


def test_two_servers_side_by_side_share_one_home(stack, profiles, alice_token, docker_client):
    profiles("two.json")
    start_server(stack, alice_token, "alice", options={"profile": "cpu"})
    start_server(stack, alice_token, "alice", server="gpu", options={"profile": "gpu"})
    default, gpu = docker_client.containers.get(PREFIX + "alice"), docker_client.containers.get(PREFIX + "alice-s-gpu")
    # Two containers, each with its profile's limits, each alone on a network of its own.
    assert (default.attrs["HostConfig"]["Memory"], gpu.attrs["HostConfig"]["Memory"]) == (2 * 1024**3, 3 * 1024**3)
    assert list(default.attrs["NetworkSettings"]["Networks"]) == [PREFIX + "alice"]
    assert list(gpu.attrs["NetworkSettings"]["Networks"]) == [PREFIX + "alice-s-gpu"]
    assert gpu.labels["devhub.server"] == "gpu" and "devhub.server" not in default.labels
    # One home: what the CPU server writes, the training server reads.
    written = default.exec_run(["sh", "-c", "echo from-the-cpu-server > ~/shared-note.txt"], user="1000")
    assert written.exit_code == 0, written.output
    read = gpu.exec_run(["cat", "/home/jovyan/shared-note.txt"], user="1000")
    assert (read.exit_code, read.output) == (0, b"from-the-cpu-server\n")
    # The training server cannot reach the other one: different internal networks.
    probe = gpu.exec_run(["python", "-c", "import socket; socket.create_connection(('devhub-alice', 8888), 3)"],
                         user="1000")
    assert probe.exit_code == 1 and b"gaierror" in probe.output, probe.output
    # Metrics per server: Prometheus has a series for each of alice's servers, with its own limit.
    def limits() -> dict | None:
        # Prometheus leaves out empty labels: the default server's series has no "server".
        got = {r["metric"].get("server", ""): float(r["value"][1])
               for r in prometheus_query(stack, 'devhub_user_memory_limit_bytes{user="alice"}')}
        return got if set(got) >= {"", "gpu"} else None

    per_server = wait_until(limits, 90, interval=1, what="per-server series of alice's two servers in Prometheus")
    assert (per_server[""], per_server["gpu"]) == (2 * 1024**3, 3 * 1024**3)
    # Stopping one leaves the other running.
    stop_server(stack, alice_token, "alice", server="gpu")
    assert not docker_client.containers.list(filters={"name": f"^/{PREFIX}alice-s-gpu$"})
    # Its network stays for the next start (nothing of alice's on it), until the server is removed.
    (kept,) = [n for n in docker_client.networks.list(names=[PREFIX + "alice-s-gpu"]) if n.name == PREFIX + "alice-s-gpu"]
    kept.reload()
    assert gpu.id not in kept.attrs["Containers"] and default.id not in kept.attrs["Containers"]
    default.reload()
    assert default.status == "running" and servers(stack, alice_token)[""]["ready"]
    # Removing the server takes its network; the default server's stays.
    removed = hub_api(stack, alice_token, "DELETE", server_path("alice", "gpu"), json={"remove": True})
    assert removed.status_code in (202, 204), removed.text
    wait_until(lambda: PREFIX + "alice-s-gpu" not in {n.name for n in docker_client.networks.list(names=[PREFIX + "alice"])},
               60, interval=0.2, what="the removed server's network to go")
    assert docker_client.networks.get(PREFIX + "alice").name == PREFIX + "alice"


def test_ssh_to_a_stopped_named_server_starts_it(stack, profiles, alice_token, alice_key, docker_client, tmp_path):
    profiles("two.json")
    start_server(stack, alice_token, "alice", server="exp1", options={"profile": "gpu"})
    stop_server(stack, alice_token, "alice", server="exp1")
    assert "" not in servers(stack, alice_token)  # the default server is not running, and stays so
    exp1 = SshTarget(stack.ssh_port, alice_key.private, user="alice+exp1", host="localhost")
    result = exp1.run("hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
                      timeout=240)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "devhub-alice-s-exp1"
    assert int(result.stdout.split()[1]) == 3 * 1024**3  # started with its last profile (gpu: 3G)
    assert "starting" in result.stderr.lower(), result.stderr  # the same progress lines as the default server
    assert docker_client.containers.get(PREFIX + "alice-s-exp1").status == "running"
    # Its own network has the egress proxy too: pip's index answers (devhub.egress).
    assert exp1.check("curl -sS -o /dev/null -w '%{http_code}' https://pypi.org/simple/tabulate/", timeout=60) == "200"
    # scp to it, read back over ssh.
    local = tmp_path / "to-exp1.txt"
    local.write_text("sent to exp1\n")
    copied = subprocess.run(["scp", "-P", str(stack.ssh_port), *exp1.options(), str(local), "alice+exp1@localhost:/tmp/"],
                            capture_output=True, text=True, timeout=120)
    assert copied.returncode == 0, copied.stderr
    assert exp1.check("cat /tmp/to-exp1.txt") == "sent to exp1\n"
    # -L reaches exp1's own Jupyter (base URL /user/alice/exp1/; the default server's would not answer it).
    port = free_port()
    tunnel = subprocess.Popen(exp1.ssh_args("-N", "-L", f"{port}:localhost:8888"), stderr=subprocess.PIPE)
    try:
        api = wait_until(lambda: _json(f"http://127.0.0.1:{port}/user/alice/exp1/api"), 60, interval=0.5,
                         what="exp1's Jupyter through ssh -L")
        assert "version" in api
    finally:
        tunnel.terminate()
        tunnel.wait(10)
    assert "" not in servers(stack, alice_token)  # still untouched


def test_the_keys_pages_ssh_config_reaches_a_named_server_by_sftp_rsync_and_socks(stack, profiles, alice, alice_token,
                                                                                     alice_key, tmp_path):
    """What a user pastes from the SSH keys page into ~/.ssh/config works for every tool that runs
    over ssh, to the named server: ssh, sftp, rsync, and -D (VS Code Remote-SSH's local SOCKS forward)."""
    profiles("two.json")
    start_server(stack, alice_token, "alice", server="exp1", options={"profile": "cpu"})
    page = alice.session.get(f"{stack.url}/hub/ssh-keys", timeout=30)
    assert page.status_code == 200, page.status_code
    block = html.unescape(re.search(r'<pre id="ssh-config"[^>]*>(.*?)</pre>', page.text, re.S)[1])
    assert f"Host devhub-exp1\n    HostName {stack.host}\n    Port {stack.ssh_port}\n    User alice+exp1\n" in block, block
    config = tmp_path / "ssh_config"
    config.write_text(block.replace("~/.ssh/id_ed25519", str(alice_key.private)) + "\nHost *\n    IdentitiesOnly yes\n"
                      "    BatchMode yes\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n    LogLevel ERROR\n")
    ssh = ["ssh", "-F", str(config)]

    def over_ssh(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)

    assert over_ssh(*ssh, "devhub-exp1", "hostname").stdout.strip() == "devhub-alice-s-exp1"
    # sftp: put a file, then read it back with a second tool.
    (tmp_path / "by-sftp.txt").write_text("sent by sftp\n")
    (tmp_path / "batch").write_text(f"put {tmp_path / 'by-sftp.txt'} /tmp/by-sftp.txt\n")
    put = over_ssh("sftp", "-F", str(config), "-b", str(tmp_path / "batch"), "devhub-exp1")
    assert put.returncode == 0, put.stderr
    # rsync over ssh (rsync runs on both ends): a directory, then the sftp file comes back.
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "train.py").write_text("print('training')\n")
    pushed = over_ssh("rsync", "-a", "-e", " ".join(ssh), f"{tmp_path / 'project'}/", "devhub-exp1:project/")
    assert pushed.returncode == 0, pushed.stderr
    pulled = over_ssh("rsync", "-a", "-e", " ".join(ssh), "devhub-exp1:/tmp/by-sftp.txt", str(tmp_path / "back.txt"))
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "back.txt").read_text() == "sent by sftp\n"
    assert over_ssh(*ssh, "devhub-exp1", "cd project && python train.py").stdout == "training\n"
    # -D: a SOCKS proxy into the server, as VS Code Remote-SSH opens one: exp1's Jupyter through it.
    port = free_port()
    socks = subprocess.Popen([*ssh, "-N", "-D", f"127.0.0.1:{port}", "devhub-exp1"], stderr=subprocess.PIPE)
    try:
        def through_socks() -> str | None:
            got = over_ssh("curl", "-sS", "--max-time", "5", "--socks5-hostname", f"127.0.0.1:{port}",
                           "http://localhost:8888/user/alice/exp1/api", timeout=30)
            return got.stdout if got.returncode == 0 else None

        assert '"version"' in wait_until(through_socks, 60, interval=0.5, what="exp1's Jupyter through ssh -D")
    finally:
        socks.terminate()
        socks.wait(10)
    assert "" not in servers(stack, alice_token)  # the default server was not started by any of this


def test_limits_and_unknown_servers_are_refused_clearly(stack, profiles, alice_token, alice_key):
    profiles("two.json")
    for name in ("exp1", "exp2"):
        response = hub_api(stack, alice_token, "POST", server_path("alice", name), json={"profile": "cpu"})
        assert response.status_code in (201, 202), response.text
    # MAX_SERVERS_PER_USER=3: the default server and two named ones.
    refused = hub_api(stack, alice_token, "POST", server_path("alice", "exp3"), json={"profile": "cpu"})
    assert refused.status_code == 400
    assert "alice already has the maximum of 2 named servers" in refused.json()["message"]
    unknown = SshTarget(stack.ssh_port, alice_key.private, user="alice+nope", host="localhost")
    result = unknown.run("true", timeout=60)  # a hang would end in TimeoutExpired
    assert result.returncode != 0
    assert "alice has no server named 'nope' (alice's servers: default, exp1, exp2)" in result.stderr, result.stderr
    bad = SshTarget(stack.ssh_port, alice_key.private, user="alice+Bad_Name", host="localhost").run("true", timeout=60)
    assert bad.returncode != 0 and "1-32 characters of a-z, 0-9 and '-'" in bad.stderr, bad.stderr


def test_the_short_timeout_profile_is_culled_first(stack, profiles, alice_token):
    profiles("short-idle.json")
    start_server(stack, alice_token, "alice", options={"profile": "cpu"})
    start_server(stack, alice_token, "alice", server="train", options={"profile": "gpu"})
    started = time.monotonic()
    wait_until(lambda: not servers(stack, alice_token).get("train", {}).get("ready"), 180, interval=1,
               what="the 30 s profile's server to be culled")
    culled_after = time.monotonic() - started
    assert servers(stack, alice_token)[""]["ready"]  # the 10 min profile's server runs on
    # The audit log says which culler stopped which server, and why (written once the stop request ends).
    wait_until(lambda: ('"event": "cull", "user": "alice", "server": "train", "by": "devhub-profile-culler", '
                        '"reason": "idle for longer than its profile\'s idle_timeout (cpu: 10 min, gpu: 30 s)"')
               in stack.compose("logs", "--no-color", "hub").stdout, 60, interval=1, what="the cull's audit line")
    print(f"train (idle_timeout 30 s) culled {culled_after:.0f} s after it was ready; the cpu server still runs")


def _json(url: str) -> dict | None:
    try:
        response = requests.get(url, timeout=5)
    except requests.RequestException:
        return None
    return response.json() if response.ok else None
