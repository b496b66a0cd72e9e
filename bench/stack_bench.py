"""Benchmarks of the multi-user stack (docker compose, demo identity provider). Run by `make bench`.

- spawn: spawn-to-ready latency p50/p95 over 20 spawns of one user through the hub's REST API (start
  request until the hub reports the server ready), next to the user image's own start-to-ready time
  measured in the same run (bench/image_bench.py, interleaved); goal p50 <= 3 s with a warm image.
- burst: 20 users requesting their servers at once: all ready, wall time.
- ssh_cold: `ssh -p SSH_PORT alice@host true` through the gateway when alice's server is stopped (the
  gateway starts it through the hub), to the command's exit; next to the same with the server running.
- overhead: GET /user/alice/api/status through nginx -> proxy -> server against the server directly
  (its address on its per-user network), keep-alive, same run; goal <= 5 ms added p50.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hub")]
import image_bench  # noqa: E402
from stack_support import Stack, cleanup_hub_objects, hub_api, stack_env, start_server, stop_server  # noqa: E402
from support import SshTarget, free_port, make_keypair  # noqa: E402

PROJECT = "devhubbench"
BURST = [f"u{i:02d}" for i in range(1, 21)]


def timed_spawn(stack: Stack, token: str, user: str) -> float:
    t0 = time.monotonic()
    start_server(stack, token, user, timeout=300)
    return time.monotonic() - t0


def request_times(session: requests.Session, url: str, n: int, **kwargs) -> list[float]:
    session.get(url, timeout=10, **kwargs)  # connection set up outside the timing
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert session.get(url, timeout=10, **kwargs).status_code == 200
        times.append((time.perf_counter() - t0) * 1000)
    return times


def run(spawns: int = 20) -> dict:
    client = docker.from_env(timeout=300)
    ports = free_port(), free_port(), free_port()
    stack = Stack(*ports, stack_env(*ports, DEMO_EXTRA_USERS=",".join(BURST)), project=PROJECT,
                  overlay="bench/compose.bench.yml")
    cleanup_hub_objects(client, PROJECT)
    stack.compose("down", "-v", check=False)
    try:
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "180", timeout=400)
        alice = stack.login("alice")
        token = alice.token()
        timed_spawn(stack, token, "alice")  # warm-up: image in page cache, network code paths
        stop_server(stack, token, "alice")
        spawn_times, image_times = [], []
        for _ in range(spawns):
            spawn_times.append(timed_spawn(stack, token, "alice"))
            stop_server(stack, token, "alice")
            image_times.append(image_bench.one_start(client)[0])

        # Request overhead, with alice's server up.
        start_server(stack, token, "alice")
        box = client.containers.get(f"{PROJECT}-user-alice")
        ip = next(iter(box.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        headers = {"Authorization": f"token {token}"}
        through, direct = requests.Session(), requests.Session()
        through.verify, through.trust_env = False, False
        via = request_times(through, f"{stack.server_url('alice')}/api/status", 300, headers=headers)
        straight = request_times(direct, f"http://{ip}:8888/user/alice/api/status", 300, headers=headers)

        # ssh to a stopped server (the gateway starts it) and to a running one.
        with tempfile.TemporaryDirectory() as tmp:
            key = make_keypair(Path(tmp), name="bench")
            added = hub_api(stack, token, "POST", "/devhub/ssh/users/alice/keys", json={"name": "bench", "key": key.public_line})
            assert added.status_code == 201, added.text
            ssh = SshTarget(stack.ssh_port, key.private, user="alice")
            cold, warm = [], []
            for _ in range(5):
                stop_server(stack, token, "alice")
                t0 = time.monotonic()
                assert ssh.run("true", timeout=300).returncode == 0
                cold.append(time.monotonic() - t0)
                t0 = time.monotonic()
                assert ssh.run("true", timeout=60).returncode == 0
                warm.append(time.monotonic() - t0)
        stop_server(stack, token, "alice")

        # 20 users at once.
        tokens = {u: stack.login(u).token() for u in BURST}
        errors: list[str] = []

        def one(user: str) -> None:
            try:
                start_server(stack, tokens[user], user, timeout=600)
            except Exception as exc:  # noqa: BLE001 - reported in the result
                errors.append(f"{user}: {exc}")

        threads = [threading.Thread(target=one, args=(u,)) for u in BURST]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(900)
        burst_wall = time.monotonic() - t0
        return {
            "spawn_to_ready_s": image_bench.summary(spawn_times),
            "image_start_to_ready_same_run_s": image_bench.summary(image_times),
            "ssh_true_s": {"server_stopped": image_bench.summary(cold), "server_running": image_bench.summary(warm)},
            "burst_20_users": {"all_ready": not errors, "errors": errors[:5], "wall_s": round(burst_wall, 1)},
            "request_ms": {"through_nginx_proxy": image_bench.summary(via), "direct_to_server": image_bench.summary(straight),
                           "added_p50": round(image_bench.percentile(via, 0.5) - image_bench.percentile(straight, 0.5), 2)},
            "goals": {"spawn_p50_s": 3.0, "added_request_p50_ms": 5.0},
        }
    finally:
        cleanup_hub_objects(client, PROJECT)
        stack.compose("down", "-v", check=False)
