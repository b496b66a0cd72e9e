"""Benchmarks of the multi-user stack (docker compose, demo identity provider). Run by `make bench`.

- spawn: spawn-to-ready latency p50/p95 over 20 spawns of one user through the hub's REST API (start
  request until the hub answers it ready, or its progress event stream, which the browser's spawn
  page follows, says so; over a kept-alive connection, as from an open page), next to the user
  image's own start-to-ready time measured in the same run (bench/image_bench.py, interleaved); goal
  p50 <= 3 s with a warm image.
  Per step (p50/p95, from the spawn's audit line, devhub.timeline): the hub before the spawner, the
  spawner's SSH keys, GPU claim, network lookup/create, peer attach, container create+start, the
  server's boot until it answers HTTP (devhub.readiness), then the hub's own check and proxy route
  until the hub reports it ready. Goals (issue 12): p50 <= 1.3x and p95 <= 1.6x the image's own
  start-to-ready p50/p95 in the same run. Two references, interleaved: standalone JupyterLab (the
  image's default), and the image started as the hub starts it (`spawn_vs_image_hub_mode`: the
  hub's JUPYTERHUB_* environment, so jupyterhub-singleuser, with a stand-in answering its start-up
  call to the hub's API), which leaves the hub's own overhead in the ratio.
- burst: 20 users (logged in, servers stopped) requesting their servers at once: all ready, wall time
  (goal <= 25 s, no errors). Each user waits as the browser's spawn page does, on the hub's progress
  event stream (one request, no polling), so the bench's own load stays small on a host it shares
  with the stack; the result says where the host's CPU went meanwhile (user containers, hub,
  Docker's daemons, the bench itself).
- ssh_cold: `ssh -p SSH_PORT alice@host true` through the gateway when alice's server is stopped (the
  gateway starts it through the hub), to the command's exit; next to the same with the server running.
  Goal: p50 <= the image's own start-to-ready p50 + 1 s.
- overhead: GET /user/alice/api/status through nginx -> proxy -> server against the server directly
  (its address on its per-user network), keep-alive, same run; goal <= 5 ms added p50.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator
import tempfile
import time
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hub")]
import image_bench  # noqa: E402
from stack_support import (Stack, audit_lines, cleanup_hub_objects, hub_api, stack_env, start_server,  # noqa: E402
                           stop_server)
from gateway_bench import container_cpu_seconds  # noqa: E402
from support import SshTarget, free_port, make_keypair  # noqa: E402

PROJECT = "devhubbench"
BURST = [f"u{i:02d}" for i in range(1, 21)]


def timed_spawn(stack: Stack, token: str, user: str, windows: list | None = None,
                session: requests.Session | None = None) -> float:
    """Seconds from the start request until the hub says the server is ready: its answer to the
    request (201: the hub answers once the server is up and routed, if that takes less than its
    slow_spawn_timeout), else the "ready" event of the progress stream the browser's spawn page
    follows. (Polling the REST API instead added up to its interval, and on 2 cores its requests
    took CPU from the starting server.) (wall-clock request, ready) appended to `windows`. With
    `session`, over a kept-alive connection, as from a browser's open page: a new TLS connection per
    request costs this Python client ~25 ms that no browser pays."""
    if session is not None:
        session.get(f"{stack.url}/hub/api/", timeout=30)  # its connection is open before the clock starts
    wall, t0 = time.time(), time.monotonic()
    start_and_follow(stack, token, user, timeout=300, session=session)
    seconds = time.monotonic() - t0
    if windows is not None:
        windows.append((wall, wall + seconds))
    return seconds


SPAWNER_STEPS = ("ssh_keys", "gpus", "network_create", "network_attach", "container", "server_answers")
CONTAINER_PARTS = ("container_create", "container_start")  # inside "container"


def spawn_steps(stack: Stack, user: str, windows: list[tuple[float, float]]) -> dict:
    """p50/p95 of each part of spawn-to-ready, each spawn's audit line matched to its request window."""
    spawns = [e["steps"] for e in audit_lines(stack) if e["event"] == "spawn" and e.get("user") == user and "steps" in e]
    parts: dict[str, list[float]] = {"hub_before_spawner": [], **{step: [] for step in SPAWNER_STEPS + CONTAINER_PARTS},
                                     "hub_check_and_route": []}
    for requested, ready in windows:
        steps = next((s for s in spawns if requested - 0.5 <= s["began"] <= ready), None)
        if steps is None:
            continue
        parts["hub_before_spawner"].append(max(0.0, steps["began"] - requested))
        for step in SPAWNER_STEPS + CONTAINER_PARTS:
            parts[step].append(steps.get(step, 0.0))
        parts["hub_check_and_route"].append(max(0.0, ready - steps["began"] - steps["total"]))
    return {"matched": f"{len(parts['gpus'])}/{len(windows)}",
            **{name: image_bench.summary(values) for name, values in parts.items() if values}}


def kept_alive_session() -> requests.Session:
    """A client session to the stack's self-signed front door that keeps its connections."""
    session = requests.Session()
    session.verify, session.trust_env = False, False  # trust_env would put REQUESTS_CA_BUNDLE back
    return session


def start_and_follow(stack: Stack, token: str, user: str, timeout: float,
                     session: requests.Session | None = None) -> None:
    """Ask for `user`'s server and follow its progress event stream (what the browser's spawn page
    reads) until the hub reports it ready; raise on failure or after `timeout` seconds. Over
    `session`'s connections if given, else a new connection per request."""
    http = session or kept_alive_session()
    headers = {"Authorization": f"token {token}"}
    started = http.post(f"{stack.url}/hub/api/users/{user}/server", headers=headers, timeout=60)
    if started.status_code == 201:  # started at once
        return
    if started.status_code == 400 and "is already running" in started.text:  # a login started it, and it is up
        return
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + timeout
    with http.get(f"{stack.url}/hub/api/users/{user}/server/progress", headers=headers, stream=True,
                  timeout=60) as events:
        assert events.status_code == 200, events.text
        for line in events.iter_lines():
            if line.startswith(b"data:"):
                event = json.loads(line[5:])
                if event.get("ready"):
                    return
                if event.get("failed"):
                    raise RuntimeError(event.get("message", "failed"))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{user}'s server not ready within {timeout} s")
    raise RuntimeError(f"{user}'s progress stream ended before the server was ready")


def start_all(stack: Stack, tokens: dict[str, str], in_flight: int) -> tuple[list[str], float]:
    """Ask the hub for every user's server, `in_flight` requests at a time, and wait until each is
    ready or failed: (the failures, wall seconds)."""
    errors: list[str] = []

    def start(user: str) -> None:
        try:
            start_and_follow(stack, tokens[user], user, timeout=600)
        except Exception as exc:  # noqa: BLE001 - reported in the result
            errors.append(f"{user}: {exc}")

    t0 = time.monotonic()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(start, tokens))
    return errors, time.monotonic() - t0


def host_busy_cpu_s() -> float:
    """CPU seconds the host has been busy (all cores, idle and iowait left out), from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def daemons_cpu_s() -> dict[int, float]:
    """CPU seconds used so far by each of Docker's daemons (dockerd, containerd, the per-container
    shims with the runc calls they waited for), by process id."""
    seconds = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.index("(") + 1:text.rindex(")")] in ("dockerd", "containerd", "containerd-shim"):
            fields = text[text.rindex(")") + 2:].split()
            seconds[int(stat.parent.name)] = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return seconds


def daemons_cpu_since(before: dict[int, float]) -> float:
    """CPU seconds Docker's daemons used since `before` (daemons_cpu_s), counting the processes alive
    now: a shim that exited meanwhile (its container stopped) takes its seconds with it, so this is a
    lower bound, never less than zero."""
    return sum(now - before.get(pid, 0.0) for pid, now in daemons_cpu_s().items())


def timed_burst(client: docker.DockerClient, stack: Stack, tokens: dict[str, str]) -> dict:
    """All users' servers at once: wall time, errors, and where the host's CPU went meanwhile."""
    hub = client.containers.get(f"{PROJECT}-hub-1")
    hub0, daemons0, busy0, self0 = container_cpu_seconds(hub), daemons_cpu_s(), host_busy_cpu_s(), os.times()
    errors, wall = start_all(stack, tokens, in_flight=len(tokens))
    busy, self1 = host_busy_cpu_s() - busy0, os.times()
    servers = [container_cpu_seconds(c) for c in client.containers.list(filters={"name": f"{PROJECT}-user-"})]
    return {"all_ready": not errors, "errors": errors[:5], "wall_s": round(wall, 1), "goal_wall_s": 25,
            "met": not errors and wall <= 25,
            "cpu_s": {"host_busy": round(busy, 1), "host_cores": os.cpu_count(),
                      "user_servers": round(sum(servers), 1),
                      "per_user_server": round(sum(servers) / max(1, len(servers)), 2),
                      "hub": round(container_cpu_seconds(hub) - hub0, 1),
                      "docker_daemons": round(daemons_cpu_since(daemons0), 1),
                      "bench_client": round(self1.user + self1.system - self0.user - self0.system, 1)}}


def request_times(session: requests.Session, url: str, n: int, **kwargs) -> list[float]:
    session.get(url, timeout=10, **kwargs)  # connection set up outside the timing
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert session.get(url, timeout=10, **kwargs).status_code == 200
        times.append((time.perf_counter() - t0) * 1000)
    return times


@contextmanager
def bench_stack(client: docker.DockerClient, users: list[str]) -> Iterator[Stack]:
    """The stack under the bench overlay with demo identities for `users`, up; torn down after."""
    ports = free_port(), free_port(), free_port()
    stack = Stack(*ports, stack_env(*ports, DEMO_EXTRA_USERS=",".join(users)), project=PROJECT,
                  overlay="bench/compose.bench.yml")
    cleanup_hub_objects(client, PROJECT)
    stack.compose("down", "-v", check=False)
    try:
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "180", timeout=400)
        yield stack
    finally:
        cleanup_hub_objects(client, PROJECT)
        stack.compose("down", "-v", check=False)


def run(spawns: int = 20) -> dict:
    client = docker.from_env(timeout=300)
    with bench_stack(client, BURST) as stack:
        alice = stack.login("alice")
        token = alice.token()
        page = kept_alive_session()  # the spawns' requests: one browser page's connection
        timed_spawn(stack, token, "alice", session=page)  # warm-up: image in page cache, network code paths
        stop_server(stack, token, "alice")
        spawn_times, image_times, hub_mode_times, windows = [], [], [], []
        with image_bench.hub_mode_env() as hub_env:
            for _ in range(spawns):
                spawn_times.append(timed_spawn(stack, token, "alice", windows, session=page))
                stop_server(stack, token, "alice")
                image_times.append(image_bench.one_start(client)[0])
                hub_mode_times.append(image_bench.one_start(client, hub_env)[0])

        # Request overhead, with alice's server up.
        start_server(stack, token, "alice")
        box = client.containers.get(f"{PROJECT}-user-alice")
        ip = next(iter(box.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        headers = {"Authorization": f"token {token}"}
        through, direct = kept_alive_session(), requests.Session()
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

        # 20 users at once. Logging in starts a user's server (as in a browser): let those finish
        # starting (JupyterHub answers a stop of a pending spawn with a 500 when the cancelled
        # spawn takes over 1 s to unwind), then stop them.
        tokens = {u: stack.login(u).token() for u in BURST}

        def started_then_stopped(user: str) -> None:
            start_server(stack, tokens[user], user, timeout=300)
            stop_server(stack, tokens[user], user, timeout=300)

        with ThreadPoolExecutor(len(BURST)) as pool:
            list(pool.map(started_then_stopped, BURST))
        burst = timed_burst(client, stack, tokens)
        image_p50, image_p95 = (image_bench.percentile(image_times, q) for q in (0.5, 0.95))
        hub_mode_p50, hub_mode_p95 = (image_bench.percentile(hub_mode_times, q) for q in (0.5, 0.95))
        spawn_p50, spawn_p95 = (image_bench.percentile(spawn_times, q) for q in (0.5, 0.95))
        cold_p50 = image_bench.percentile(cold, 0.5)
        return {
            "spawn_to_ready_s": image_bench.summary(spawn_times),
            "spawn_vs_image": {"p50_ratio": round(spawn_p50 / image_p50, 2), "p95_ratio": round(spawn_p95 / image_p95, 2),
                               "goal_p50_ratio": 1.3, "goal_p95_ratio": 1.6,
                               "met": spawn_p50 <= 1.3 * image_p50 and spawn_p95 <= 1.6 * image_p95},
            # The same, against the image started as the hub starts it (jupyterhub-singleuser, which
            # loads part of JupyterHub and asks the hub's API before it serves; a stand-in answers):
            # what is left is the hub's own overhead.
            "spawn_vs_image_hub_mode": {"p50_ratio": round(spawn_p50 / hub_mode_p50, 2),
                                        "p95_ratio": round(spawn_p95 / hub_mode_p95, 2),
                                        "goal_p50_ratio": 1.3, "goal_p95_ratio": 1.6,
                                        "met": spawn_p50 <= 1.3 * hub_mode_p50 and spawn_p95 <= 1.6 * hub_mode_p95},
            "ssh_stopped_vs_image": {"added_p50_s": round(cold_p50 - image_p50, 2), "goal_added_p50_s": 1.0,
                                     "met": cold_p50 <= image_p50 + 1.0},
            "spawn_steps_s": spawn_steps(stack, "alice", windows),
            "image_start_to_ready_same_run_s": image_bench.summary(image_times),
            "image_hub_mode_start_to_ready_same_run_s": image_bench.summary(hub_mode_times),
            "ssh_true_s": {"server_stopped": image_bench.summary(cold), "server_running": image_bench.summary(warm)},
            "burst_20_users": burst,
            "request_ms": {"through_nginx_proxy": image_bench.summary(via), "direct_to_server": image_bench.summary(straight),
                           "added_p50": round(image_bench.percentile(via, 0.5) - image_bench.percentile(straight, 0.5), 2)},
            "goals": {"added_request_p50_ms": 5.0},
        }
