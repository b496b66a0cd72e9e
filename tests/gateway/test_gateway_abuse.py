"""The SSH gateway under abuse (issue 8, item 5), real gateway containers with the compose limits and
the real OpenSSH client: connection floods from another address, stalled handshakes, one user
opening a thousand channels, and slow server starts through the hub router (a fake hub over HTTP)."""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import subprocess
import time

import asyncssh
import pytest
from asyncssh.constants import OPEN_ADMINISTRATIVELY_PROHIBITED

from gateway_support import (GATEWAY_IMAGE, GatewayEnv, audit_events, compose_limits, container_host_key,  # noqa: F401
                             gateway_image, gw_env, hub_gateway, scrape)
from support import host_port, wait_until

# Run in a container on the gateway's network, so the flood comes from another address than the
# legitimate client (the host, through the published port): idle TCP connections, then connections
# that send an SSH banner and stall. Prints what it got, then holds every socket open.
FLOOD = r"""
import json, select, signal, socket, sys, time
target, idle, stalled = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(idle + stalled):
    s = socket.create_connection((target, 2222), timeout=10)
    if i >= idle:
        s.sendall(b"SSH-2.0-flood\r\n")
    socks.append(s)
banner = dropped = 0
pending, deadline = list(socks), time.monotonic() + 5
while pending and time.monotonic() < deadline:
    ready, _, _ = select.select(pending, [], [], 0.5)
    for s in ready:
        pending.remove(s)
        try:
            data = s.recv(64)
        except OSError:
            data = b""
        if data.startswith(b"SSH-2.0-"):
            banner += 1
        else:
            dropped += 1
print("FLOOD " + json.dumps({"opened": len(socks), "banner": banner, "dropped": dropped}), flush=True)
signal.pause()  # hold the connections open until the test removes this container
"""


def timed_ssh_true(gw_env, gw, user: str):
    """`ssh user@gateway true`: it must succeed; (the result, seconds it took)."""
    t0 = time.monotonic()
    result = gw_env.ssh(gw, user).run("true", timeout=30)
    elapsed = time.monotonic() - t0
    assert result.returncode == 0, result.stderr
    return result, elapsed


def memory(container) -> dict:
    """The container's memory use now and at its peak (cgroup v1 max_usage; v2 has no peak here)."""
    stats = container.stats(stream=False)["memory_stats"]
    return {"usage": stats["usage"], "peak": stats.get("max_usage", stats["usage"]), "limit": stats["limit"]}


def mib(n: float) -> float:
    return round(n / 2 ** 20, 1)


@pytest.fixture
def fresh_gateway(gw_env):
    """A gateway of its own with the default limits (refusal summaries every 2 s, for the test)."""
    container = gw_env.start_gateway({"GATEWAY_REFUSAL_LOG_INTERVAL": "2"})
    yield container
    gw_env.tracked.remove_container(container)


def test_flood_of_idle_and_stalled_connections_leaves_room_for_a_user(gw_env, fresh_gateway):
    gw = fresh_gateway
    flooder = gw_env.tracked.run(GATEWAY_IMAGE, entrypoint=["python3", "-c", FLOOD, gw.name, "300", "50"],
                                 network=gw_env.network, name=f"{gw.name}-flood")
    try:
        line = wait_until(lambda: [x for x in flooder.logs().decode().splitlines() if x.startswith("FLOOD ")],
                          60, what="the flood to be in place")[0]
        flood = json.loads(line.split(" ", 1)[1])
        result, elapsed = timed_ssh_true(gw_env, gw, "alice")
        print(f"\nflood {flood}; legitimate ssh true under the flood: {elapsed:.2f} s")
        assert elapsed < 5, f"a legitimate login took {elapsed:.1f} s under the flood"
        # The flood ran and was refused at accept: all 350 connected, only the per-address pre-auth
        # allowance (GATEWAY_MAX_PREAUTH_PER_ADDRESS, 20) got a banner, the rest were closed unanswered.
        assert flood == {"opened": 350, "banner": 20, "dropped": 330}, flood
        flooder.reload()
        address = flooder.attrs["NetworkSettings"]["Networks"][gw_env.network]["IPAddress"]
        reason = "too many unauthenticated connections from this address"

        def refusal_lines() -> list[dict]:
            return [e for e in audit_events(gw) if e.get("address") == address]

        def counted() -> int:  # a refused line counts one, a summary line its count
            return sum(e.get("count", 1) for e in refusal_lines())

        wait_until(lambda: counted() == 330, 15, what="330 refusals in the audit log")
        lines = refusal_lines()
        assert {(e["event"], e["reason"]) for e in lines} <= {("refused", reason), ("refused_summary", reason)}
        assert len(lines) <= 4, lines  # summarised: a line or two per 2 s interval, not 330
    finally:
        gw_env.tracked.remove_container(flooder)


def test_stalled_handshake_is_cut_at_the_login_timeout(gw_env):
    gw = gw_env.start_gateway({"GATEWAY_LOGIN_TIMEOUT": "3", "GATEWAY_REFUSAL_LOG_INTERVAL": "2"})
    try:
        with socket.create_connection(("127.0.0.1", host_port(gw, "2222/tcp")), timeout=20) as s:
            s.sendall(b"SSH-2.0-stalled\r\n")
            t0 = time.monotonic()
            received = b""
            try:
                while chunk := s.recv(4096):  # the banner and KEXINIT, then nothing until the gateway closes
                    received += chunk
            except ConnectionResetError:  # closed with a reset: as good as a close
                pass
            held = time.monotonic() - t0
        assert received.startswith(b"SSH-2.0-devhub-sshgw")
        assert 2.5 < held < 8, f"stalled handshake held {held:.1f} s with GATEWAY_LOGIN_TIMEOUT=3"
        assert wait_until(lambda: [e for e in audit_events(gw, "refused") if e["reason"] == "login timeout"], 10,
                          what="the login timeout in the audit log")
    finally:
        gw_env.tracked.remove_container(gw)


# Run in the user's container: every connection gets 4 MiB it never reads, and nothing is read back.
FIREHOSE = r"""
import asyncio
async def handle(reader, writer):
    writer.write(b"x" * (4 << 20))
    await asyncio.Event().wait()  # keep the connection, read nothing
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 8790)
    print("listening", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def test_one_user_cannot_open_a_thousand_channels(gw_env, fresh_gateway):
    gw = fresh_gateway
    # The service runs in a session of u2 (same container): all of u4's channels are forwards.
    firehose = subprocess.Popen(gw_env.ssh(gw, "u2").ssh_args() + ["python -c " + shlex.quote(FIREHOSE)],
                                stdout=subprocess.PIPE, text=True)
    limit = memory(gw)["limit"]
    before = memory(gw)["usage"]

    async def abuse():
        """1000 direct-tcpip channels over four connections (one after the other, so which cap refuses
        is known), each fed 2 MiB and never read."""
        accepted, refusals, conns = [], [], []
        for _ in range(4):
            conn = await asyncssh.connect("127.0.0.1", host_port(gw, "2222/tcp"), username="u4", known_hosts=None,
                                          client_keys=[str(gw_env.users["u4"].private)], agent_path=None, config=None)
            conns.append(conn)
            mine = []
            for _ in range(250):
                try:
                    _, writer = await conn.open_connection("127.0.0.1", 8790)
                except asyncssh.ChannelOpenError as exc:
                    refusals.append((exc.code, exc.reason))
                    continue
                writer.write(b"y" * (2 << 20))
                mine.append(writer)
            accepted.append(len(mine))
        return conns, accepted, refusals

    async def scenario():
        conns, accepted, refusals = await abuse()
        # While u4 holds the caps full of unread data: memory, then another user logs in.
        loop = asyncio.get_running_loop()
        samples = [await loop.run_in_executor(None, memory, gw) for _ in range(3)]
        bob = await loop.run_in_executor(None, lambda: gw_env.ssh(gw, "bob").run("echo served", timeout=30))
        for conn in conns:
            conn.close()
        return accepted, refusals, samples, bob

    try:
        assert firehose.stdout.readline().strip() == "listening"
        accepted, refusals, samples, bob = asyncio.run(scenario())
    finally:
        firehose.terminate()
        firehose.wait(10)
    usage, peak = max(s["usage"] for s in samples), max(s["peak"] for s in samples)
    print(f"\nchannels accepted per connection {accepted}; gateway memory before {mib(before)} MiB, "
          f"with 64 full channels {mib(usage)} MiB (peak {mib(peak)} MiB, limit {mib(limit)} MiB): "
          f"{mib((usage - before) / 64)} MiB per channel")
    assert accepted == [32, 32, 0, 0]  # GATEWAY_MAX_CHANNELS_PER_CONNECTION 32, GATEWAY_MAX_CHANNELS_PER_USER 64
    assert len(refusals) == 1000 - 64
    assert {code for code, _ in refusals} == {OPEN_ADMINISTRATIVELY_PROHIBITED}
    reasons = {reason.split(";")[0] for _, reason in refusals}
    assert reasons == {"devhub: too many open channels on this connection (limit 32)",
                       "devhub: too many open channels for u4 (limit 64 over all connections)"}, reasons
    assert peak < limit * 0.8, f"gateway memory peaked at {mib(peak)} MiB of {mib(limit)} MiB"
    gw.reload()
    assert gw.status == "running" and not gw.attrs["State"]["OOMKilled"]
    assert bob.returncode == 0 and bob.stdout.strip() == "served", bob.stderr
    refused = [e for e in audit_events(gw, "refused") if e["reason"] == "channel limit"]
    assert refused and refused[0]["user"] == "u4"


def test_slow_server_start_does_not_delay_another_users_login(gw_env, hub_gateway):
    gw, hub = hub_gateway
    slow = gw_env.ssh(gw, "slowpoke", key=gw_env.users["ghost"])
    waiting = [subprocess.Popen(slow.ssh_args() + ["echo started"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(6)]
    try:
        wait_until(lambda: len([e for e in audit_events(gw, "login") if e.get("user") == "slowpoke"]) == 6, 60,
                   what="six slowpoke connections waiting for their server")
        held_since = time.monotonic()
        assert all(p.poll() is None for p in waiting)
        bob, elapsed = timed_ssh_true(gw_env, gw, "bob")
        print(f"\nbob's ssh true while six connections wait for a slow start: {elapsed:.2f} s")
        assert elapsed < 2, f"bob's login took {elapsed:.1f} s behind a slow start"
        assert all(p.poll() is None for p in waiting)  # still starting
        held = time.monotonic() - held_since
        hub.release.set()
        outcomes = [p.communicate(timeout=60) for p in waiting]
    finally:
        for p in waiting:
            if p.poll() is None:
                p.kill()
    assert [out.strip() for out, _ in outcomes] == ["started"] * 6, [err for _, err in outcomes]
    assert all("starting it" in err for _, err in outcomes)  # each saw the shared start's progress
    assert hub.posts("/users/slowpoke/server") == ["/hub/api/users/slowpoke/server"]  # one start for six
    # Spawn-on-connect latency: the six waited on the start, bob's connection to a running server is not counted.
    spawns = scrape(gw)
    assert spawns[("devhub_gateway_spawn_seconds_count", ())] == 6
    assert spawns[("devhub_gateway_spawn_seconds_sum", ())] >= 6 * held  # each waited at least while the start was held
