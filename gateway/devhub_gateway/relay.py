"""Faithful relay of one SSH session channel to the upstream sshd.

The downstream side is an asyncssh server process whose channel accepts any request the client
makes (shell, exec, any subsystem: ``sftp`` goes to the container's sftp-server, so scp and rsync
work too). The upstream side is an asyncssh client process opened with the same command or
subsystem, PTY type, modes and size, and the client's LANG / LC_* variables. Window-size changes,
breaks and signals arrive as exceptions on the downstream stdin and are replayed upstream; the exit
status or exit signal comes back. Each channel's flow control pauses the other, so SSH flow
control holds end to end.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from dataclasses import dataclass
from typing import Callable

import asyncssh
from asyncssh.constants import EXTENDED_DATA_STDERR
from asyncssh.sftp import MIN_SFTP_VERSION

ENV_PASS = re.compile(r"^(LANG|LANGUAGE|LC_[A-Z_]+|TZ|COLORTERM)$")


class RelayProcess(asyncssh.SSHServerProcess):
    """A server process that hands every subsystem (sftp included) to our handler instead of
    asyncssh's built-in SFTP server (overrides two hooks of asyncssh's stream session), counts what
    the client sends from its first byte (bytes sent before the relay begins are buffered, and
    counted as they arrive), and calls `on_close` once its channel is gone (the gateway counts open
    channels)."""

    def __init__(self, handler, counters: Counters, on_close=None):
        super().__init__(handler, None, MIN_SFTP_VERSION, False)
        self.counters = counters
        self._on_close = on_close

    def data_received(self, data: bytes, datatype) -> None:
        self.counters.add(up=len(data))
        super().data_received(data, datatype)

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        if self._on_close:
            self._on_close()

    def subsystem_requested(self, subsystem: str) -> bool:
        return True

    def session_started(self) -> None:
        chan = self._chan
        stdin = asyncssh.SSHReader(self, chan)
        stdout = asyncssh.SSHWriter(self, chan)
        stderr = asyncssh.SSHWriter(self, chan, EXTENDED_DATA_STDERR)
        handler = self._session_factory(stdin, stdout, stderr)
        if inspect.isawaitable(handler):
            self._conn.create_task(handler, stdin.logger)


@dataclass
class Counters:
    """Bytes relayed by one channel; every chunk also goes to `on_bytes(up, down)` (the gateway's
    metrics and activity: a user is active while data flows)."""

    up: int = 0    # client -> container
    down: int = 0  # container -> client
    on_bytes: Callable[[int, int], None] | None = None

    def add(self, up: int = 0, down: int = 0) -> None:
        self.up += up
        self.down += down
        if self.on_bytes:
            self.on_bytes(up, down)


class CountedForwarder(asyncssh.SSHForwarder):
    """The client side of a forwarded channel, joined to its upstream channel: counts the bytes
    either way and calls `on_close` once the channel is gone."""

    def __init__(self, peer: asyncssh.SSHForwarder, counters: Counters, on_close):
        super().__init__(peer)
        self._counters = counters
        self._on_close = on_close

    def data_received(self, data: bytes, datatype=None) -> None:  # from the client
        self._counters.add(up=len(data))
        super().data_received(data, datatype)

    def write(self, data: bytes) -> None:  # from the container (the peer writes here)
        self._counters.add(down=len(data))
        super().write(data)

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        self._on_close()


async def forward_tcp(upstream: asyncssh.SSHClientConnection, host: str, port: int, counters: Counters,
                      on_close) -> CountedForwarder:
    """Open `host:port` from the user's container (a direct-tcpip channel upstream)."""
    _, peer = await upstream.create_connection(asyncssh.SSHForwarder, host, port)
    return CountedForwarder(peer, counters, on_close)


async def forward_unix(upstream: asyncssh.SSHClientConnection, path: str, counters: Counters,
                       on_close) -> CountedForwarder:
    """Open the UNIX socket `path` in the user's container (direct-streamlocal upstream)."""
    _, peer = await upstream.create_unix_connection(asyncssh.SSHForwarder, path)
    return CountedForwarder(peer, counters, on_close)


def client_env(process: asyncssh.SSHServerProcess) -> dict[str, str]:
    env = {}
    for key, value in (process.env or {}).items():
        key = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        value = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        if ENV_PASS.match(key):
            env[key] = value
    return env


class CountedClientProcess(asyncssh.SSHClientProcess):
    """The upstream end of a session: counts what the container sends (stdout and stderr)."""

    def __init__(self, counters: Counters):
        super().__init__()
        self._counters = counters

    def data_received(self, data: bytes, datatype) -> None:
        self._counters.add(down=len(data))
        super().data_received(data, datatype)


async def relay_session(process: RelayProcess,
                        upstream_conn: asyncssh.SSHClientConnection) -> tuple[int | None, tuple | None]:
    """Run the client's request upstream and relay until it ends; returns (exit status, exit signal).

    The two channels are joined by asyncssh's process-to-process redirection: every packet is
    handed on from the receiving channel's callback, with each side's flow control pausing the
    other, and no task or buffer per chunk in between (the relay's cost per byte is what bounds
    throughput). Window changes, breaks and signals on the client's side are replayed upstream by
    the same path (SSHClientProcess.feed_exception). The container's end of output is not passed
    on as EOF: the channel stays writable for a last line (a server that went away), and `finish`
    ends it with the exit status."""
    _, upstream = await upstream_conn.create_session(
        lambda: CountedClientProcess(process.counters),
        command=process.command, subsystem=process.subsystem, env=client_env(process),
        term_type=process.term_type, term_size=process.term_size if process.term_type else None,
        term_modes=process.term_modes if process.term_type else None, encoding=None)
    try:
        await upstream.redirect(stdin=process.stdin)
        await upstream.redirect(stdout=process.stdout, stderr=process.stderr, send_eof=False)
        # Ends when the container's side closes (its command exited, or the connection went), or
        # when the client's side does (then the upstream channel is closed below).
        ended = [asyncio.ensure_future(upstream.wait_closed()), asyncio.ensure_future(process.wait_closed())]
        try:
            await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in ended:
                waiter.cancel()
    finally:
        upstream.close()
    return upstream.exit_status, upstream.exit_signal


def finish(process: asyncssh.SSHServerProcess, status: int | None, signal: tuple | None) -> None:
    """End the downstream channel the way the upstream one ended."""
    try:
        if signal:
            name, core_dumped, msg, lang = signal
            process.exit_with_signal(name, core_dumped, msg, lang)
        elif status is not None:
            process.exit(status)
        else:
            process.close()
    except (OSError, asyncssh.Error):
        pass
