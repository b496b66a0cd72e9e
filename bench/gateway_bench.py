"""Benchmarks of the SSH gateway (devhub/sshgw), side by side with the container's own sshd in the
same run. Run by `make bench` via run.py (or `python bench/run.py gateway`).

- throughput: 200 MB through `ssh ... 'cat > /dev/null'` (upload) and `head -c` (download), through
  the gateway and directly to the container's sshd; ratio gateway/direct (goal >= 0.70). With the
  client's default cipher (chacha20-poly1305) and with aes128-gcm.
- first byte: `ssh ... 'echo x'` from process start to the first output byte, p50 over N; the
  gateway's added latency is the p50 difference (goal <= 150 ms).
- echo round trip: one persistent session running `cat`, one line written and read back at a time,
  p50 over N; added p50 (goal <= 1 ms).
Both paths go through Docker's published ports on 127.0.0.1 (docker-proxy), so that cost cancels.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import HARDENED  # noqa: E402

from image_bench import summary  # noqa: E402

USER_IMAGE = "devhub/dev-gpu:latest"
GATEWAY_IMAGE = "devhub/sshgw:latest"
STATE = "/var/lib/devhub-sshgw"
SIZE = 200_000_000


def _port(container, port: str = "2222/tcp") -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])


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


def _ssh(port: int, key: Path, user: str, *extra: str) -> list[str]:
    return ["ssh", "-p", str(port), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-i", str(key), *extra, f"{user}@127.0.0.1"]


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
            client_pub = client.containers.run(GATEWAY_IMAGE, ["python3", "-m", "devhub_gateway", "--print-client-key"],
                                               remove=True, volumes={state: {"bind": STATE, "mode": "rw"}}).decode().strip()
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
            paths = {"gateway": _ssh(_port(gateway), tmp_path / "user", "bench"),
                     "direct": _ssh(_port(user), key_path, "jovyan")}
            for base in paths.values():
                subprocess.run([*base, "true"], check=True, timeout=60)  # warm-up

            result: dict = {"throughput_mb_s": {}, "first_byte_ms": {}, "echo_rtt_ms": {}}
            for cipher in (None, "aes128-gcm@openssh.com"):
                for direction in ("up", "down"):
                    name = f"{direction}_{'default' if cipher is None else 'aes128gcm'}"
                    samples = {p: [] for p in paths}
                    for _ in range(runs):  # interleaved: both paths see the same machine noise
                        for p, base in paths.items():
                            samples[p].append(_throughput(base, direction, cipher))
                    med = {p: round(statistics.median(v), 1) for p, v in samples.items()}
                    result["throughput_mb_s"][name] = {**med, "ratio": round(med["gateway"] / med["direct"], 2)}
            fb = {p: [] for p in paths}
            for _ in range(latency_n):
                for p, base in paths.items():
                    fb[p].append(_first_byte(base) * 1000)
            result["first_byte_ms"] = {p: summary(v) for p, v in fb.items()}
            result["first_byte_ms"]["added_p50"] = round(result["first_byte_ms"]["gateway"]["p50"]
                                                        - result["first_byte_ms"]["direct"]["p50"], 1)
            rtt = {p: _echo_rtts(base, echo_n) for p, base in paths.items()}
            result["echo_rtt_ms"] = {p: summary(v) for p, v in rtt.items()}
            result["echo_rtt_ms"]["added_p50"] = round(result["echo_rtt_ms"]["gateway"]["p50"]
                                                      - result["echo_rtt_ms"]["direct"]["p50"], 3)
            result["goals"] = {"throughput_ratio": 0.70, "first_byte_added_ms": 150, "echo_rtt_added_p50_ms": 1.0}
            return result
        finally:
            for container in created:
                container.remove(force=True, v=True)
            for volume in volumes:
                volume.remove(force=True)
            network.remove()
