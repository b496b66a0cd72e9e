"""A client connection's upstream: the connection to the user's sshd, opened once after login (the
hub starts her server if need be, with progress lines shown to her sessions), and the one line that
tells her sessions why, when her server goes away under them."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import asyncssh

from .router import RouteError

if TYPE_CHECKING:
    from .connection import GatewayConnection

log = logging.getLogger("devhub_gateway.upstream")
SSHD_START_GRACE_S = 5.0


class Upstream:
    """The upstream connection of one logged-in client connection (`owner`)."""

    def __init__(self, owner: GatewayConnection):
        self.owner = owner
        self.gw = owner.gw
        self.task: asyncio.Task | None = None
        self.connection: asyncssh.SSHClientConnection | None = None
        self.progress: list[str] = []
        self.notice = ""  # from the hub's route: shown when a shell opens
        self.lost: asyncio.Task | None = None  # it went away under the client: the line to tell

    def open(self) -> None:
        """Start opening it (at login): sessions opened meanwhile wait on it with `ready`."""
        self.task = asyncio.ensure_future(self._open())
        self.task.add_done_callback(lambda t: t.cancelled() or t.exception())  # no "never retrieved"

    def close(self) -> None:
        """The client left: stop opening it, close it (not a loss to tell anybody about)."""
        for task in (self.task, self.lost):
            if task and not task.done():
                task.cancel()
        if self.connection:
            self.connection.close()

    async def _note(self, message: str) -> None:
        self.progress.append(message)

    async def _open(self) -> asyncssh.SSHClientConnection:
        owner, t0 = self.owner, time.monotonic()
        if owner.target.problem:
            raise RouteError(owner.target.problem)
        route = await self.gw.router.route(owner.target, self._note)
        options = self.gw.upstream_options(route)
        where = f"{route.host}:{route.port}"
        try:
            upstream = await self._dial(route, options)
        except asyncssh.HostKeyNotVerifiable:
            self.gw.audit("upstream_refused", user=owner.user, sid=owner.sid, upstream=where, reason="host key mismatch")
            raise RouteError("your server's SSH host key does not match the one the hub recorded for it; "
                             "refusing to connect (host key verification failed)") from None
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
            self.gw.audit("upstream_failed", user=owner.user, sid=owner.sid, upstream=where,
                          reason=str(exc) or type(exc).__name__)
            raise RouteError(f"cannot reach your server's SSH service at {where} "
                             f"({str(exc) or type(exc).__name__})") from None
        if owner.conn is None or owner.conn.is_closed():
            upstream.close()
            raise RouteError("client went away")
        self.connection = upstream
        self.notice = route.notice
        if route.started:
            self.gw.metrics.spawned(time.monotonic() - t0)
        self.gw.audit("upstream", **owner.target.audit_fields(), sid=owner.sid, upstream=where)
        return upstream

    async def _dial(self, route, options) -> asyncssh.SSHClientConnection:
        """Connect to the server's sshd. The hub calls a server ready when Jupyter answers; sshd,
        started beside it by supervisord, may take a moment longer: a just-started server's refusal
        is retried for up to SSHD_START_GRACE_S."""
        deadline = time.monotonic() + (SSHD_START_GRACE_S if route.started else 0)
        while True:
            try:
                return await asyncssh.connect(route.host, route.port, options=options,
                                              client_factory=lambda: _UpstreamWatch(self._lost))
            except ConnectionRefusedError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.05)

    async def ready(self, stderr: asyncssh.SSHWriter | None = None) -> asyncssh.SSHClientConnection:
        """The upstream connection, writing progress to `stderr` while it is being set up."""
        task = self.task
        if task is None:
            raise RouteError("not authenticated")
        t0, shown, next_note = time.monotonic(), 0, 2.0
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            if stderr is None:
                continue
            while shown < len(self.progress):
                write(stderr, f"devhub: {self.progress[shown]}\r\n")
                shown += 1
                next_note = time.monotonic() - t0 + 5
            waited = time.monotonic() - t0
            if not task.done() and waited >= next_note:
                write(stderr, "devhub: connecting to your server...\r\n" if next_note < 3
                      else f"devhub: still waiting for your server ({waited:.0f} s)\r\n")
                next_note = waited + 5
        return task.result()

    def _lost(self) -> None:
        """The connection to her sshd is gone. Unless we closed it because the client left, her server
        stopped (culled, stopped by an admin or by herself): find out why once, tell every session
        (connection.GatewayConnection._run_session), then end the client connection, so her next one
        starts the server again."""
        if self.owner.client_gone or self.lost is not None:
            return
        self.lost = asyncio.ensure_future(self._lost_line())
        self.lost.add_done_callback(
            lambda task: task.cancelled() or asyncio.get_running_loop().call_later(
                1.0, self.owner.close, "devhub: your server went away; connect again to start it"))

    async def _lost_line(self) -> str:
        owner = self.owner
        try:
            # The hub stops a blocked user's server itself (at its start): say why, not only that it went away.
            refusal = await self._refusal_after_loss()
            stop = None if refusal else await self.gw.router.last_stop(owner.target)
        except Exception:  # noqa: BLE001 - a broken router still gets the session its generic line
            log.exception("why the server of %r went away", owner.user)
            refusal = stop = None
        self.gw.audit("server_lost", user=owner.user, source=owner.source, sid=owner.sid,
                      reason=f"SSH access ended: {refusal}" if refusal else stop)
        if refusal:
            return f"devhub: your SSH access ended: {refusal}"
        if stop:
            return f"devhub: your server was stopped: {stop}; connect again to start it."
        return "devhub: your server stopped; connect again to start it."

    async def _refusal_after_loss(self, patience: float = 15) -> str | None:
        """Why access ended, when the upstream was lost because of it; asks the hub again while it
        is away (restarting), for up to `patience` seconds."""
        deadline = time.monotonic() + patience
        while self.owner.key_blob:
            try:
                return await self.gw.router.access_refusal(self.owner.user, self.owner.holds_key)
            except RouteError:
                if time.monotonic() > deadline:
                    return None
                await asyncio.sleep(1)
        return None


class _UpstreamWatch(asyncssh.SSHClient):
    """The upstream connection's owner: tells the client connection when it goes away."""

    def __init__(self, on_lost):
        self._on_lost = on_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()


def write(stream: asyncssh.SSHWriter, text: str) -> None:
    """A line to the client's channel, which may be closing (then nothing)."""
    try:
        stream.write(text.encode())
    except (OSError, asyncssh.Error):
        pass
