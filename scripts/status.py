#!/usr/bin/env python3
"""`make status`: the stack's services and their health, then every user server, named ones too (age, GPUs, CPU and
memory now, home usage, live SSH sessions through the gateway). Reads Docker only; standard library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SSH_PORT_HEX = "08AE"  # 2222: user containers' sshd, which the gateway's upstream connections reach
TCP_ESTABLISHED = "01"


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"status: docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def ssh_sessions_by_address(gateway: str) -> dict[str, int]:
    """Established upstream connections from the gateway to port 2222, by container address."""
    if not gateway:
        return {}
    table = docker("exec", gateway, "cat", "/proc/net/tcp", check=False).splitlines()[1:]
    counts: dict[str, int] = {}
    for line in table:
        fields = line.split()
        if len(fields) < 4 or fields[3] != TCP_ESTABLISHED:
            continue
        address, port = fields[2].split(":")
        if port != SSH_PORT_HEX:
            continue
        ip = ".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0))  # little-endian hex
        counts[ip] = counts.get(ip, 0) + 1
    return counts


def user_network_prefix() -> str:
    """USER_NETWORK_PREFIX as make up/down read it: this checkout's user servers (another project's,
    on the same engine, have their own prefix)."""
    return subprocess.run(["bash", "-c", ". scripts/stack-env.sh && setting USER_NETWORK_PREFIX devhub-user-"],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True).stdout


def home_usage(container: str) -> str:
    out = docker("exec", container, "timeout", "10", "du", "-sh", "/home/jovyan", check=False).split()
    return out[0] if out else "?"


def main() -> None:
    print("== services ==")
    print(docker("compose", "ps", "--format", "table {{.Service}}\t{{.State}}\t{{.Status}}\t{{.Ports}}").rstrip())
    gateway = docker("compose", "ps", "-q", "sshgw", check=False).strip()
    sessions = ssh_sessions_by_address(gateway)
    ids = docker("ps", "-q", "--filter", "label=devhub.role=user-server", "--filter", f"name=^{user_network_prefix()}").split()
    print("\n== user servers ==")
    if not ids:
        print("(none running)")
        return
    stats = {s["ID"][:12]: s for s in map(json.loads, docker("stats", "--no-stream", "--format", "{{json .}}", *ids).splitlines())}
    rows = [("USER", "SERVER", "CONTAINER", "STARTED", "GPUS", "CPU", "MEMORY", "HOME", "SSH")]
    for info in json.loads(docker("inspect", *ids)):
        labels = info["Config"]["Labels"]
        addresses = [n["IPAddress"] for n in info["NetworkSettings"]["Networks"].values()]
        stat = stats.get(info["Id"][:12], {})
        rows.append((labels.get("devhub.user", "?"), labels.get("devhub.server") or "(default)", info["Name"].lstrip("/"), info["State"]["StartedAt"][:19] + "Z",
                     labels.get("devhub.gpus") or "none", stat.get("CPUPerc", "?"), stat.get("MemUsage", "?"),
                     home_usage(info["Id"]), str(sum(sessions.get(a, 0) for a in addresses))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())


if __name__ == "__main__":
    main()
