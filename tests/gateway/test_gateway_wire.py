"""The gateway's change to asyncssh's wire behaviour (devhub_gateway.wire), between a real asyncssh
server and client on loopback: the packets the client receives, from asyncssh's own packet log."""

from __future__ import annotations

import asyncio
import logging
import re

import asyncssh
import pytest

from devhub_gateway import wire

PAYLOAD = b"x" * 200_000
RECEIVED = re.compile(r"\] Received (MSG_[A-Z_]+) \(")  # "[conn=1, pktid=9] Received MSG_IGNORE (2), 5 bytes"


class _Open(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return False  # no authentication: the test is about the packets after it


async def _received_packet_types(cipher: str, caplog) -> list[str]:
    """Connect with `cipher`, have the server write PAYLOAD, and return the types of the packets
    either side logged as received after login."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")

    async def send(process: asyncssh.SSHServerProcess) -> None:
        process.stdout.write(PAYLOAD)
        await process.stdout.drain()
        process.exit(0)

    server = await asyncssh.create_server(_Open, "127.0.0.1", 0, server_host_keys=[host_key], process_factory=send,
                                          encoding=None, encryption_algs=[cipher], compression_algs=None)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncssh.connect("127.0.0.1", port, known_hosts=None, username="u", encryption_algs=[cipher],
                                    compression_algs=None) as conn:
            caplog.clear()
            result = await conn.run("send", encoding=None)
            assert result.stdout == PAYLOAD  # everything arrives, in order
    finally:
        server.close()
    return [m.group(1) for r in caplog.records if (m := RECEIVED.search(r.getMessage()))]


@pytest.fixture
def packet_log(caplog):
    caplog.set_level(logging.DEBUG, logger="asyncssh")
    asyncssh.set_debug_level(3)  # asyncssh logs each packet at its debug level 3
    yield caplog
    asyncssh.set_debug_level(1)


@pytest.mark.parametrize("cipher", ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"])
def test_no_ignore_packet_before_each_packet_without_cbc(cipher, packet_log):
    wire.drop_cbc_only_ignore_packets()
    wire.drop_cbc_only_ignore_packets()  # twice: applied once
    received = asyncio.run(_received_packet_types(cipher, packet_log))
    assert received.count("MSG_CHANNEL_DATA") >= 6  # 200 kB in 32 kB packets
    assert "MSG_IGNORE" not in received, received


def test_cbc_keeps_its_countermeasure(packet_log):
    """asyncssh still pads CBC (not offered by the gateway, but whoever sends with it needs it)."""
    wire.drop_cbc_only_ignore_packets()
    received = asyncio.run(_received_packet_types("aes128-cbc", packet_log))
    data = received.count("MSG_CHANNEL_DATA")
    assert data >= 6 and received.count("MSG_IGNORE") >= data, received
