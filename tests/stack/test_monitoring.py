"""Monitoring, as an operator uses it: the monitoring profile's real Prometheus scrapes the hub,
the GPU pool, users' servers and the SSH gateway (all up); PromQL finds alice's running server, her
open SSH session and a process of hers killed for memory; stopping the gateway fires its alert; the
Grafana dashboard's queries all run. None of it answers a user's container or an anonymous caller.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from stack_support import ROOT, LiveSession, add_key, hub_api, start_server, user_container
from support import SshTarget, exec_out, wait_until

JOBS = {"prometheus", "hub", "gpu-pool", "user-servers", "sshgw"}
DASHBOARD = ROOT / "monitoring" / "grafana" / "devhub-dashboard.json"


def query(stack, promql: str) -> list[dict]:
    r = requests.get(f"{stack.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "success", (promql, r.text)
    return r.json()["data"]["result"]


def value_of(stack, promql: str) -> float | None:
    result = query(stack, promql)
    return float(result[0]["value"][1]) if result else None


def targets(stack) -> dict[str, str]:
    r = requests.get(f"{stack.prometheus_url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    return {t["labels"]["job"]: f"{t['health']} {t['lastError']}".strip() for t in r}


def firing(stack) -> set[str]:
    alerts = requests.get(f"{stack.prometheus_url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


@pytest.fixture(scope="module")
def scraped(stack):
    wait_until(lambda: requests.get(f"{stack.prometheus_url}/-/ready", timeout=5).status_code == 200, 120,
               what="Prometheus to be ready")
    wait_until(lambda: all(targets(stack).get(job, "").startswith("up") for job in JOBS), 120, interval=1,
               what=f"every target up (now {targets(stack)})")
    return stack


def test_prometheus_sees_alices_server_and_ssh_session(scraped, alice_token, tmp_path):
    stack = scraped
    start_server(stack, alice_token, "alice")
    assert wait_until(lambda: value_of(stack, 'devhub_user_server_running{user="alice"}') == 1, 60, interval=1,
                      what="alice's running server in Prometheus")
    assert wait_until(lambda: (value_of(stack, 'devhub_user_memory_bytes{user="alice"}') or 0) > 10 * 1024**2, 60,
                      interval=1, what="alice's memory in use")
    assert value_of(stack, 'devhub_user_memory_limit_bytes{user="alice"}') == 3 * 1024**3  # USER_MEM_LIMIT of the test stack
    assert value_of(stack, "devhub_gpu_devices") == 0  # no GPU here, and the pool says so

    key, key_id = add_key(stack, alice_token, "alice", tmp_path, "alice-monitored")
    session = LiveSession(SshTarget(stack.ssh_port, key.private, user="alice"))
    try:
        assert wait_until(lambda: value_of(stack, 'devhub_gateway_user_connections{user="alice"}') == 1, 60, interval=1,
                          what="alice's SSH connection in Prometheus")
        # Its own poll: the scrape that first saw the connection may have come before the exec channel opened.
        assert wait_until(lambda: (value_of(stack, 'devhub_gateway_sessions{kind="exec"}') or 0) >= 1, 60, interval=1,
                          what="alice's exec session in Prometheus")
    finally:
        session.process.kill()
        hub_api(stack, alice_token, "DELETE", f"/devhub/ssh/users/alice/keys/{key_id}")  # as other tests expect
    assert wait_until(lambda: not value_of(stack, 'devhub_gateway_user_connections{user="alice"}'), 60, interval=1,
                      what="alice's closed connection to leave the gauge")


def test_a_process_killed_for_memory_is_counted_and_alerted(scraped, alice_token, docker_client):
    stack = scraped
    start_server(stack, alice_token, "alice")
    # Her series exists (at 0 since the hub started) before the kill, as the alert's increase() needs.
    before = float(wait_until(lambda: query(stack, 'devhub_user_oom_kills_total{user="alice"}'), 60, interval=1,
                              what="alice's OOM kill counter")[0]["value"][1])
    hog = "x = []\nwhile True: x.append(bytearray(256 << 20))"
    code, out = user_container(docker_client, "alice").exec_run(["python3", "-c", hog], user="1000")
    assert code == 137, (code, out[-500:])  # SIGKILL from the kernel's OOM killer at the 3 GiB limit
    assert wait_until(lambda: (value_of(stack, 'devhub_user_oom_kills_total{user="alice"}') or 0) > before, 60,
                      interval=1, what="the OOM kill in Prometheus")
    wait_until(lambda: "DevhubUserServerOOMKilled" in firing(stack), 60, interval=1, what="the OOM alert")


def test_a_stopped_gateway_fires_its_alert(scraped):
    stack = scraped
    assert "DevhubGatewayDown" not in firing(stack)
    stack.compose("stop", "sshgw")
    try:
        wait_until(lambda: "DevhubGatewayDown" in firing(stack), 120, interval=1, what="DevhubGatewayDown to fire")
        assert targets(stack)["sshgw"].startswith("down")
    finally:
        stack.compose("start", "sshgw")
        wait_until(lambda: targets(stack)["sshgw"].startswith("up"), 120, interval=1, what="the gateway back up")


def test_every_dashboard_query_runs(scraped):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 10
    names = set(requests.get(f"{scraped.prometheus_url}/api/v1/label/__name__/values", timeout=10).json()["data"])
    for expr in exprs:
        query(scraped, expr.replace("$__rate_interval", "1m").replace("$user", ".*"))
    # Every devhub metric the dashboard draws exists (the GPU holder only while someone holds a GPU).
    used = {word for expr in exprs for word in _words(expr) if word.startswith("devhub_")}
    assert used - names <= {"devhub_gpu_device_holder", "devhub_gpu_device_in_use"}, used - names


def _words(expr: str) -> list[str]:
    return "".join(ch if ch.isalnum() or ch == "_" else " " for ch in expr).split()


METRICS_PATHS = ("/hub/metrics", "/hub/api/devhub/metrics/servers", "/hub/api/devhub/metrics/gpus")
# Inside a user's server, with the token the hub gave it, at the hub API address it was given.
FROM_INSIDE = """
import os, urllib.request, urllib.error
base = os.environ["JUPYTERHUB_API_URL"].removesuffix("/api")
for path in {paths!r}:
    request = urllib.request.Request(base + path.removeprefix("/hub"),
                                     headers={{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}})
    try:
        print(path, urllib.request.urlopen(request, timeout=10).status)
    except urllib.error.HTTPError as exc:
        print(path, exc.code, " ".join(exc.read().decode()[:300].split()))
"""


def test_metrics_are_not_for_users_or_anonymous_callers(scraped, alice_token, bob_token, docker_client):
    stack = scraped
    for path in METRICS_PATHS:
        anonymous = requests.get(f"{stack.url}{path}", verify=False, timeout=10)
        assert anonymous.status_code == 403, (path, anonymous.status_code)
        # A user's own token lacks read:metrics (alice, an admin of the demo, has it).
        bobs = requests.get(f"{stack.url}{path}", headers={"Authorization": f"token {bob_token}"}, verify=False, timeout=10)
        assert bobs.status_code == 403 and "read:metrics" in bobs.text, (path, bobs.text)
    start_server(stack, alice_token, "alice")
    box = user_container(docker_client, "alice")
    inside = exec_out(box, ["python3", "-c", FROM_INSIDE.format(paths=METRICS_PATHS)], user="1000")
    answers = dict(line.split(" ", 1) for line in inside.strip().splitlines())
    # The hub's API refuses her server's token; its /hub/metrics is not even routed to users' servers.
    assert answers["/hub/metrics"].startswith("404") and "nginx" in answers["/hub/metrics"], inside
    assert all(answers[p].startswith("403") and "read:metrics" in answers[p] for p in METRICS_PATHS[1:]), inside
    gateway = stack.container(docker_client, "sshgw")
    gateway.reload()
    on_alices_network = gateway.attrs["NetworkSettings"]["Networks"]["devhubtest-user-alice"]["IPAddress"]
    probe = ("import socket, sys\n"
             "for host, port in [(sys.argv[1], 9101), ('sshgw-metrics', 9101), ('prometheus', 9090)]:\n"
             "    try:\n"
             "        socket.create_connection((host, port), 5).close(); print(host, 'open')\n"
             "    except OSError as exc:\n"
             "        print(host, type(exc).__name__, exc)\n")
    out = exec_out(box, ["python3", "-c", probe, on_alices_network], user="1000")
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert lines[on_alices_network].startswith("ConnectionRefusedError"), out  # the gateway, but not its metrics
    assert lines["sshgw-metrics"].startswith("gaierror") and lines["prometheus"].startswith("gaierror"), out
    # Prometheus' own port is on the host's loopback only.
    published = subprocess.run(["docker", "port", stack.container(docker_client, "prometheus").name, "9090"],
                               capture_output=True, text=True, check=True).stdout.split()
    assert published and all(p.startswith("127.0.0.1:") for p in published), published
