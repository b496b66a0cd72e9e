"""Benchmarks of operating the stack (monitoring profile on). Run by `make bench`.

- hub_api_ms: GET /hub/api/users/alice p50/p95 while Prometheus scrapes every target every 5 s,
  against the same with Prometheus stopped; rounds interleaved in one run (the machine is noisy).
- scrape_s: Prometheus' own scrape_duration_seconds per target (mean and max over the last minute)
  with 20 users' servers running, and devhub's collection time of the user-servers target.
- backup_restore_s: `make backup` and `make restore` of the stack with one 2 GB home (random data,
  so compression cannot make it small), wall time each, and the archive's size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hub")]
import image_bench  # noqa: E402
from stack_support import Stack, cleanup_hub_objects, hub_api, stack_env, start_server  # noqa: E402
from support import free_port, wait_until  # noqa: E402

PROJECT = "devhubbench"  # bench/compose.bench.yml names the hub's objects devhubbench-*
USERS = [f"u{i:02d}" for i in range(1, 21)]


def api_times(stack: Stack, token: str, n: int) -> list[float]:
    session = requests.Session()
    session.verify, session.trust_env = False, False
    url, headers = f"{stack.url}/hub/api/users/alice", {"Authorization": f"token {token}"}
    session.get(url, headers=headers, timeout=10)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert session.get(url, headers=headers, timeout=10).status_code == 200
        times.append((time.perf_counter() - t0) * 1000)
    return times


def promql(stack: Stack, query: str) -> dict[str, float]:
    r = requests.get(f"{stack.prometheus_url}/api/v1/query", params={"query": query}, timeout=10).json()
    return {s["metric"].get("job", ""): round(float(s["value"][1]), 4) for s in r["data"]["result"]}


def hub_api_with_and_without_scrapes(stack: Stack, token: str, rounds: int = 3, per_round: int = 200) -> dict:
    scraped, quiet = [], []
    for _ in range(rounds):
        scraped += api_times(stack, token, per_round)
        stack.compose("stop", "prometheus")
        quiet += api_times(stack, token, per_round)
        stack.compose("start", "prometheus")
        wait_until(lambda: requests.get(f"{stack.prometheus_url}/-/ready", timeout=5).status_code == 200, 120,
                   what="Prometheus ready again")
    return image_bench.side_by_side(scraped, quiet, "prometheus_scraping", "prometheus_stopped")


def scrape_durations(stack: Stack, running: int) -> dict:
    wait_until(lambda: promql(stack, "sum(devhub_user_server_running)").get("", 0) >= running, 120, interval=1,
               what=f"{running} running servers in Prometheus")
    return {"running_servers": running,
            "mean_last_minute": promql(stack, "avg_over_time(scrape_duration_seconds[1m])"),
            "max_last_minute": promql(stack, "max_over_time(scrape_duration_seconds[1m])"),
            "devhub_collect_user_servers": promql(stack, 'max_over_time(devhub_metrics_collect_seconds{job="user-servers"}[1m])')}


def backup_restore(stack: Stack, client) -> dict:
    home = "devhubbench-home-alice"
    client.containers.run("devhub/hub:latest", ["sh", "-c", "head -c 2G /dev/urandom > /v/two-gb.bin"], user="0",
                          remove=True, network_mode="none", volumes={home: {"bind": "/v", "mode": "rw"}})
    env = {**stack.env, "COMPOSE_PROJECT_NAME": PROJECT, "USER_VOLUME_PREFIX": "devhubbench-home-",
           "USER_NETWORK_PREFIX": "devhubbench-user-", "BACKUP_DIR": str(ROOT / "bench" / "results" / "backup")}
    t0 = time.monotonic()
    done = subprocess.run(["make", "backup"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    backup_s = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-2000:]
    archive = max(Path(env["BACKUP_DIR"]).glob("devhub-*.tar.gz"), key=os.path.getmtime)
    size = archive.stat().st_size
    cleanup_hub_objects(client, PROJECT)
    stack.compose("down", "-v")
    t0 = time.monotonic()
    done = subprocess.run(["make", "restore", f"BACKUP={archive}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)
    restore_s = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-2000:]
    archive.unlink()
    return {"home_bytes": 2 * 1024**3, "archive_bytes": size, "backup": round(backup_s, 1), "restore": round(restore_s, 1)}


def run() -> dict:
    client = docker.from_env(timeout=300)
    ports = free_port(), free_port(), free_port()
    stack = Stack(*ports, stack_env(*ports, DEMO_EXTRA_USERS=",".join(USERS), PROMETHEUS_SCRAPE_INTERVAL="5s"),
                  project=PROJECT, overlay="bench/compose.bench.yml")
    cleanup_hub_objects(client, PROJECT)
    stack.compose("down", "-v", check=False)
    try:
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "180", timeout=400)
        token = stack.login("alice").token()
        start_server(stack, token, "alice")
        errors = []
        for user in USERS:
            try:
                start_server(stack, stack.login(user).token(), user, timeout=300)
            except Exception as exc:  # noqa: BLE001 - reported with the hub's log, measured with those that run
                answer = hub_api(stack, token, "GET", f"/users/{user}")
                errors.append(f"{user}: {exc!r}; GET /users/{user}: {answer.status_code} {answer.text[:300]}")
        if errors:
            log = stack.compose("logs", "--no-color", "--tail", "200", "hub", check=False).stdout
            (ROOT / "bench" / "results" / "operations-hub.log").write_text(log)
        result = {"scrape_s": scrape_durations(stack, len(USERS) + 1 - len(errors)),
                  "start_errors": errors[:5],
                  "hub_api_ms": hub_api_with_and_without_scrapes(stack, token)}
        for user in USERS:
            hub_api(stack, token, "DELETE", f"/users/{user}/server")
        result["backup_restore_s"] = backup_restore(stack, client)
        return result
    finally:
        cleanup_hub_objects(client, PROJECT)
        stack.compose("down", "-v", check=False)
        for volume in client.volumes.list(filters={"name": "devhubbench-home-"}):
            volume.remove(force=True)
