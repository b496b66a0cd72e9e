"""Benchmarks of named servers. Run by `make bench` (or `bench/run.py named-servers`).

- start_s: POST-to-ready of a named server while alice's default server runs, against the default
  server's own start with nothing running; rounds interleaved in one run (the machine is noisy).
- ssh_to_stopped_s: `ssh -p 2222 alice+exp1@host true` with exp1 stopped (the gateway starts it),
  against `ssh alice@host true` with the default server stopped; interleaved.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hub")]
import image_bench  # noqa: E402
from stack_support import Stack, add_key, cleanup_hub_objects, stack_env, start_server, stop_server  # noqa: E402
from support import SshTarget, free_port  # noqa: E402

PROJECT = "devhubbench"  # bench/compose.bench.yml names the hub's objects devhubbench-*


def timed(action) -> float:
    t0 = time.perf_counter()
    action()
    return time.perf_counter() - t0


def ssh_true(target: SshTarget) -> None:
    result = target.run("true", timeout=300)
    assert result.returncode == 0, result.stderr


def run(rounds: int = 5) -> dict:
    client = docker.from_env(timeout=300)
    ports = free_port(), free_port(), free_port()
    stack = Stack(*ports, stack_env(*ports), project=PROJECT, overlay="bench/compose.bench.yml")
    cleanup_hub_objects(client, PROJECT)
    stack.compose("down", "-v", check=False)
    try:
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "180", timeout=400)
        token = stack.login("alice").token()
        with tempfile.TemporaryDirectory() as tmp:
            key, _ = add_key(stack, token, "alice", Path(tmp), "bench")
            start_server(stack, token, "alice", server="exp1")  # create it once
            stop_server(stack, token, "alice", server="exp1")
            stop_server(stack, token, "alice")  # the login started the default server: every round starts it

            default, named = [], []
            for _ in range(rounds):  # interleaved: the default server alone, then exp1 beside it
                default.append(timed(lambda: start_server(stack, token, "alice")))
                named.append(timed(lambda: start_server(stack, token, "alice", server="exp1")))
                stop_server(stack, token, "alice", server="exp1")
                stop_server(stack, token, "alice")
            named_ssh = SshTarget(stack.ssh_port, key.private, user="alice+exp1", host="localhost")
            default_ssh = SshTarget(stack.ssh_port, key.private, user="alice", host="localhost")

            def ssh_named() -> float:
                took = timed(lambda: ssh_true(named_ssh))
                stop_server(stack, token, "alice", server="exp1")
                return took

            def ssh_default() -> float:
                took = timed(lambda: ssh_true(default_ssh))
                stop_server(stack, token, "alice")
                return took

            ssh_named_s, ssh_default_s = [], []
            for _ in range(rounds):
                ssh_named_s.append(ssh_named())
                ssh_default_s.append(ssh_default())
        side_by_side = image_bench.side_by_side
        return {"start_s": side_by_side(named, default, "named_while_default_runs", "default_alone"),
                "ssh_to_stopped_s": side_by_side(ssh_named_s, ssh_default_s, "named_server", "default_server")}
    finally:
        cleanup_hub_objects(client, PROJECT)
        stack.compose("down", "-v", check=False)
        for volume in client.volumes.list(filters={"name": "devhubbench-home-"}):
            volume.remove(force=True)
