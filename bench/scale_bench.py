"""Scale benchmark: many idle user servers on one host. Run by `make bench` (`python bench/run.py scale`).

50 users log in one after another (a login starts the user's server, as in a browser), then the
bench asks the hub for each server (10 requests in flight) until all 50 are ready; the bench
overlay's small per-user limits apply. Then, while all 50 run idle:
- memory: each server's resident memory, from `docker top` (RSS per process, summed for JupyterLab,
  sshd, supervisord and the rest) and from its cgroup; p50/max per server, against the goal of
  <= 200 MB; the host's MemAvailable before and after;
- hub API: GET /hub/api/users/alice (alice's token), p50/p95 over 200 requests (goal p50 < 50 ms),
  and the gateway's two calls per SSH login (keys, route; its own token), p50/p95 over 100 each;
- ssh: `ssh -p SSH_PORT alice@host true` to her running server, p50/p95 over 10: the gateway's key
  lookup and route call to the hub, then the relay to her sshd;
- hub CPU: the hub container's CPU use over 30 s in which nobody does anything (idle polling, the
  proxy's route checks, activity updates), as a share of one core, then during the API requests;
  the idle servers' own CPU over the same 30 s (cores, all and per server).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hub")]
import gateway_bench  # noqa: E402
import image_bench  # noqa: E402
from stack_bench import PROJECT, bench_stack, request_times, start_all  # noqa: E402
from stack_support import hub_api  # noqa: E402
from support import SshTarget, make_keypair  # noqa: E402

USERS = [f"s{i:02d}" for i in range(1, 50)]  # and alice: 50 servers
IN_FLIGHT = 10
IDLE_WINDOW_S = 30.0


def _kind(command: str) -> str:
    for kind in ("jupyter", "sshd", "supervisord"):
        if kind in command:
            return kind
    return "other"


def server_memory_mb(container) -> dict[str, float]:
    """Resident MB of one server by process kind (from the host's ps, through `docker top`)."""
    top = container.top(ps_args="-o pid,rss,args")
    rss_at, args_at = top["Titles"].index("RSS"), top["Titles"].index("COMMAND")
    kinds: dict[str, float] = {"jupyter": 0.0, "sshd": 0.0, "supervisord": 0.0, "other": 0.0}
    for process in top["Processes"]:
        kinds[_kind(process[args_at])] += int(process[rss_at]) / 1024
    return {**kinds, "total": sum(kinds.values())}


def cgroup_memory_mb(container) -> float | None:
    """The container's memory as its cgroup counts it, page cache left out (v1 total_rss, v2 anon)."""
    for stat, field in ((Path(f"/sys/fs/cgroup/memory/docker/{container.id}/memory.stat"), "total_rss"),
                        *((p, "anon") for p in Path("/sys/fs/cgroup").glob(f"**/*{container.id}*/memory.stat"))):
        if stat.exists():
            values = dict(line.split() for line in stat.read_text().splitlines())
            return int(values[field]) / 1024**2
    return None


def mem_available_mb() -> float:
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return int(fields["MemAvailable"].split()[0]) / 1024


def cpu_share(container, seconds_of: callable) -> tuple[float, float]:
    """(share of one core the container used while `seconds_of()` ran, the wall seconds it took)."""
    cpu0, t0 = gateway_bench.container_cpu_seconds(container), time.monotonic()
    seconds_of()
    wall = time.monotonic() - t0
    return round((gateway_bench.container_cpu_seconds(container) - cpu0) / wall, 3), round(wall, 1)


def run(users: list[str] = USERS) -> dict:
    client = docker.from_env(timeout=300)
    with bench_stack(client, users) as stack:
        available_before = mem_available_mb()
        t0 = time.monotonic()
        tokens = {u: stack.login(u).token() for u in ["alice", *users]}
        errors, _ = start_all(stack, tokens, in_flight=IN_FLIGHT)
        all_started_s = time.monotonic() - t0
        servers = [c for c in client.containers.list(filters={"label": "devhub.role=user-server"})
                   if c.name.startswith(f"{PROJECT}-user-")]
        hub = stack.container(client, "hub")

        servers_cpu0 = sum(gateway_bench.container_cpu_seconds(c) for c in servers)
        idle_cpu, idle_wall = cpu_share(hub, lambda: time.sleep(IDLE_WINDOW_S))  # a fixed window, not a wait
        servers_idle_cores = (sum(gateway_bench.container_cpu_seconds(c) for c in servers) - servers_cpu0) / idle_wall
        session = requests.Session()
        session.verify, session.trust_env = False, False
        api: list[float] = []
        api_cpu, _ = cpu_share(hub, lambda: api.extend(request_times(
            session, f"{stack.url}/hub/api/users/alice", 200, headers={"Authorization": f"token {tokens['alice']}"})))
        # The gateway's two calls per SSH login (key lookup, route) with its own token (here through nginx;
        # the gateway itself calls the hub directly).
        gateway_token = hub.exec_run(["cat", "/srv/sshgw-secret/api_token"]).output.decode().strip()
        as_gateway = {"Authorization": f"token {gateway_token}"}
        with tempfile.TemporaryDirectory() as tmp:
            key = make_keypair(Path(tmp), name="scale")
            added = hub_api(stack, tokens["alice"], "POST", "/devhub/ssh/users/alice/keys",
                            json={"name": "scale", "key": key.public_line})
            assert added.status_code == 201, added.text
            keys_ms = request_times(session, f"{stack.url}/hub/api/devhub/ssh/users/alice/keys", 100, headers=as_gateway)
            route_ms = request_times(session, f"{stack.url}/hub/api/devhub/ssh/users/alice/route", 100, headers=as_gateway)
            ssh = SshTarget(stack.ssh_port, key.private, user="alice")
            ssh_times = []
            for _ in range(10):
                t1 = time.monotonic()
                assert ssh.run("true", timeout=60).returncode == 0
                ssh_times.append(time.monotonic() - t1)

        per_server = [server_memory_mb(c) for c in servers]
        cgroup = [m for m in (cgroup_memory_mb(c) for c in servers) if m is not None]
        return {
            "servers_running": len(servers),
            "start": {"all_ready": not errors, "errors": errors[:5],
                      "logins_then_all_ready_s": round(all_started_s, 1)},
            "memory_per_server_mb": {
                **{kind: image_bench.summary([m[kind] for m in per_server])
                   for kind in ("total", "jupyter", "sshd", "supervisord", "other")},
                **({"cgroup_rss": image_bench.summary(cgroup)} if cgroup else {}),
            },
            "host_mem_available_mb": {"before": round(available_before), "with_servers": round(mem_available_mb())},
            "hub_api_users_alice_ms": image_bench.summary(api),
            "gateway_calls_ms": {"keys": image_bench.summary(keys_ms), "route": image_bench.summary(route_ms)},
            "ssh_true_running_s": image_bench.summary(ssh_times),
            "hub_cpu_share_of_one_core": {f"idle_{idle_wall:.0f}s": idle_cpu, "during_api_requests": api_cpu},
            "idle_servers_cpu_cores": {"all": round(servers_idle_cores, 3),
                                       "per_server": round(servers_idle_cores / max(1, len(servers)), 4)},
            "goals": {"memory_per_server_mb": 200, "hub_api_p50_ms": 50},
            "met": {"memory_per_server": image_bench.percentile([m["total"] for m in per_server], 0.5) <= 200,
                    "hub_api_p50": image_bench.percentile(api, 0.5) < 50, "all_50_ready": not errors and len(servers) >= 50},
        }
