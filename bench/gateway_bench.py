"""Benchmarks of the SSH gateway (devhub/sshgw), side by side with the container's own sshd in the
same run. Run by `make bench` via run.py (or `python bench/run.py gateway`).

Two pairs of paths, measured interleaved so that both members of a pair see the same machine noise:
- `gateway` / `direct`: to the containers' own addresses on their Docker network, the path real
  clients take through the host's DNAT (no docker-proxy in between);
- `gateway_published` / `direct_published`: through ports published on 127.0.0.1 (docker-proxy, a
  userspace copy that caps both at a fraction of what OpenSSH alone does).

- throughput: 200 MB through `ssh ... 'cat > /dev/null'` (upload) and `head -c` (download), with the
  client's default cipher (chacha20-poly1305) and with aes128-gcm; MB/s and gateway/direct (goal
  >= 0.80 on container addresses).
- cpu: where the time goes on the gateway path: CPU seconds per 100 MB of the gateway, of the user
  container (sshd) and of the local ssh client, from the containers' cgroups and the client's rusage;
  a gateway near one full core is bound by its own CPU (one event loop), not by the network. The
  totals of both paths, and their ratio: on a host whose cores the client, gateway and sshd keep busy
  together (a 2-core machine), gateway/direct throughput cannot pass direct CPU / gateway-path CPU.
- first byte: `ssh ... 'echo x'` from process start to the first output byte, p50 over N; the
  gateway's added latency is the p50 difference (goal <= 150 ms).
- echo round trip: one persistent session running `cat`, one line written and read back at a time,
  p50 over N; added p50 (goal <= 1 ms).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hub")]
from conftest import HARDENED  # noqa: E402  (the hub's flags, from the spawner)

from image_bench import summary  # noqa: E402

USER_IMAGE = "devhub/dev-gpu:latest"
GATEWAY_IMAGE = os.environ.get("DEVHUB_GATEWAY_IMAGE", "devhub/sshgw:latest")
STATE = "/var/lib/devhub-sshgw"
SIZE = 200_000_000


def _port(container, port: str = "2222/tcp") -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])


def _address(container, network: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def _wait_healthy(container, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
            return
        if container.status == "exited":
            break
        time.sleep(0.2)
    raise RuntimeError(f"{container.name} not healthy: {container.logs()[-2000:]!r}")


def container_cpu_seconds(container) -> float:
    """CPU time the container has used so far, from its cgroup (v1 cpuacct or v2 cpu.stat)."""
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container.id}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    for stat in Path("/sys/fs/cgroup").glob(f"**/*{container.id}*/cpu.stat"):
        usage = dict(line.split() for line in stat.read_text().splitlines())
        return int(usage["usage_usec"]) / 1e6
    stats = container.stats(stream=False)
    return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def _client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ssh(host: str, port: int, key: Path, user: str, *extra: str) -> list[str]:
    return ["ssh", "-p", str(port), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-i", str(key), *extra, f"{user}@{host}"]


def _throughput(base: list[str], direction: str, cipher: str | None) -> float:
    extra = ["-c", cipher] if cipher else []
    args = base[:-1] + extra + base[-1:]
    t0 = time.monotonic()
    if direction == "up":
        feeder = subprocess.Popen(["head", "-c", str(SIZE), "/dev/zero"], stdout=subprocess.PIPE)
        subprocess.run([*args, "cat > /dev/null"], stdin=feeder.stdout, check=True, timeout=300)
        feeder.wait()
    else:
        out = subprocess.run([*args, f"head -c {SIZE} /dev/zero"], stdout=subprocess.PIPE, check=True, timeout=300)
        assert len(out.stdout) == SIZE
    return SIZE / (time.monotonic() - t0) / 1e6


def _first_byte(base: list[str]) -> float:
    t0 = time.monotonic()
    proc = subprocess.Popen([*base, "echo x"], stdout=subprocess.PIPE)
    proc.stdout.read(1)
    elapsed = time.monotonic() - t0
    proc.wait(30)
    return elapsed


def _echo_rtts(base: list[str], n: int) -> list[float]:
    proc = subprocess.Popen([*base, "cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    try:
        line = b"x" * 32 + b"\n"
        for _ in range(20):  # warm-up
            proc.stdin.write(line)
            proc.stdout.readline()
        rtts = []
        for _ in range(n):
            t0 = time.perf_counter()
            proc.stdin.write(line)
            proc.stdout.readline()
            rtts.append((time.perf_counter() - t0) * 1000)
        return rtts
    finally:
        proc.stdin.close()
        proc.wait(30)


def _pair(samples: dict[str, list[float]], gateway: str, direct: str) -> dict:
    med = {p: round(statistics.median(samples[p]), 1) for p in (gateway, direct)}
    return {**med, "ratio": round(med[gateway] / med[direct], 2)}


def _throughputs(paths: dict[str, list[str]], gateway, user, runs: int) -> dict:
    """MB/s per path, direction and cipher, and the CPU each process spent per 100 MB on the gateway
    path (container addresses)."""
    result: dict = {"container_addresses": {}, "published_ports": {}, "cpu_s_per_100mb": {}}
    for cipher in (None, "aes128-gcm@openssh.com"):
        for direction in ("up", "down"):
            name = f"{direction}_{'default' if cipher is None else 'aes128gcm'}"
            samples: dict[str, list[float]] = {p: [] for p in paths}
            cpu = {p: {"gateway": 0.0, "user_container": 0.0, "ssh_client": 0.0} for p in ("gateway", "direct")}
            for _ in range(runs):  # interleaved: every path sees the same machine noise
                for p, base in paths.items():
                    before = (container_cpu_seconds(gateway), container_cpu_seconds(user), _client_cpu_seconds())
                    samples[p].append(_throughput(base, direction, cipher))
                    if p in cpu:
                        after = (container_cpu_seconds(gateway), container_cpu_seconds(user), _client_cpu_seconds())
                        for key, b, a in zip(cpu[p], before, after):
                            cpu[p][key] += a - b
            result["container_addresses"][name] = _pair(samples, "gateway", "direct")
            result["published_ports"][name] = _pair(samples, "gateway_published", "direct_published")
            per_100mb = {p: {k: round(v / runs / (SIZE / 1e8), 3) for k, v in parts.items()} for p, parts in cpu.items()}
            totals = {p: sum(parts.values()) for p, parts in per_100mb.items()}
            result["cpu_s_per_100mb"][name] = {
                **per_100mb["gateway"], "gateway_path_total": round(totals["gateway"], 3),
                "direct_path_total": round(totals["direct"], 3),
                # Where client, gateway and sshd share the host's cores and keep them busy, throughput
                # follows CPU per byte: this is the gateway/direct ratio such a host allows.
                "cpu_bound_ratio": round(totals["direct"] / totals["gateway"], 2)}
    return result


def run(runs: int = 3, latency_n: int = 15, echo_n: int = 500) -> dict:
    client = docker.from_env(timeout=300)
    tag = uuid.uuid4().hex[:8]
    created = []
    network = client.networks.create(f"devhub-h3-bench-{tag}", driver="bridge")
    volumes = [client.volumes.create(f"devhub-h3-bench-{name}-{tag}") for name in ("state", "home")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        try:
            state, home = (v.name for v in volumes)
            # The gateway's client key, made in its state volume by the image's own code.
            print_client_key = ("from devhub_gateway import config, keys; "
                                "print(keys.public_line(keys.client_key(config.only('GATEWAY_STATE_DIR')['state_dir'])))")
            client_pub = client.containers.run(GATEWAY_IMAGE, ["python3", "-c", print_client_key], remove=True,
                                               volumes={state: {"bind": STATE, "mode": "rw"}}).decode().strip()
            user = client.containers.run(
                USER_IMAGE, detach=True, name=f"devhub-h3-bench-user-{tag}", network=network.name,
                environment={"DEVHUB_SSH_AUTHORIZED_KEYS": client_pub},
                volumes={home: {"bind": "/home/jovyan", "mode": "rw"}}, ports={"2222/tcp": ("127.0.0.1", None)},
                **HARDENED)
            created.append(user)
            _wait_healthy(user)
            host_key = user.exec_run(["cat", "/home/jovyan/.local/share/devhub/ssh/ssh_host_ed25519_key.pub"]).output.decode().strip()
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "user")], check=True)
            config = tmp_path / "static.json"
            config.write_text(json.dumps({"users": {"bench": {
                "keys": [(tmp_path / "user.pub").read_text()], "host": user.name, "port": 2222, "host_key": host_key}}}))
            config.chmod(0o644)
            tmp_path.chmod(0o755)
            gateway = client.containers.run(
                GATEWAY_IMAGE, detach=True, name=f"devhub-h3-bench-gw-{tag}", network=network.name,
                environment={"GATEWAY_ROUTER": "static", "GATEWAY_STATIC_CONFIG": "/etc/devhub-sshgw/static.json"},
                volumes={state: {"bind": STATE, "mode": "rw"}, str(config): {"bind": "/etc/devhub-sshgw/static.json", "mode": "ro"}},
                ports={"2222/tcp": ("127.0.0.1", None)}, read_only=True, cap_drop=["ALL"],
                security_opt=["no-new-privileges"])
            created.append(gateway)
            _wait_healthy(gateway, 60)
            # The direct path logs in with the gateway's own client key (the only key the container trusts).
            key_path = tmp_path / "gateway_client_key"
            key_path.write_bytes(gateway.exec_run(["cat", f"{STATE}/gateway_client_key"]).output)
            key_path.chmod(0o600)
            paths = {"gateway": _ssh(_address(gateway, network.name), 2222, tmp_path / "user", "bench"),
                     "direct": _ssh(_address(user, network.name), 2222, key_path, "jovyan"),
                     "gateway_published": _ssh("127.0.0.1", _port(gateway), tmp_path / "user", "bench"),
                     "direct_published": _ssh("127.0.0.1", _port(user), key_path, "jovyan")}
            for base in paths.values():
                subprocess.run([*base, "true"], check=True, timeout=60)  # warm-up

            result: dict = {"throughput_mb_s": _throughputs(paths, gateway, user, runs)}
            near = {p: paths[p] for p in ("gateway", "direct")}
            fb: dict[str, list[float]] = {p: [] for p in near}
            for _ in range(latency_n):
                for p, base in near.items():
                    fb[p].append(_first_byte(base) * 1000)
            result["first_byte_ms"] = {p: summary(v) for p, v in fb.items()}
            result["first_byte_ms"]["added_p50"] = round(result["first_byte_ms"]["gateway"]["p50"]
                                                        - result["first_byte_ms"]["direct"]["p50"], 1)
            rtt = {p: _echo_rtts(base, echo_n) for p, base in near.items()}
            result["echo_rtt_ms"] = {p: summary(v) for p, v in rtt.items()}
            result["echo_rtt_ms"]["added_p50"] = round(result["echo_rtt_ms"]["gateway"]["p50"]
                                                      - result["echo_rtt_ms"]["direct"]["p50"], 3)
            result["goals"] = {"throughput_ratio_container_addresses": 0.80, "first_byte_added_ms": 150,
                               "echo_rtt_added_p50_ms": 1.0}
            ratios = [pair["ratio"] for pair in result["throughput_mb_s"]["container_addresses"].values()]
            result["met"] = {"throughput_ratio_container_addresses": min(ratios) >= 0.80,
                             "first_byte_added": result["first_byte_ms"]["added_p50"] <= 150,
                             "echo_rtt_added": result["echo_rtt_ms"]["added_p50"] <= 1.0}
            return result
        finally:
            for container in created:
                container.remove(force=True, v=True)
            for volume in volumes:
                volume.remove(force=True)
            network.remove()
