"""Forwarded channels of one client connection: `-L`/`-D` (direct-tcpip) and VS Code's socket mode
(direct-streamlocal); `-R` is refused (connection.py). Each is opened on the connection's upstream,
holds one of its channel slots while open, and is counted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncssh
from asyncssh.constants import OPEN_CONNECT_FAILED

from . import relay
from .router import RouteError

if TYPE_CHECKING:
    from .connection import GatewayConnection


class Forwarding:
    def __init__(self, owner: GatewayConnection):
        self.owner = owner
        self.gw = owner.gw

    def direct_tcp(self, dest_host: str, dest_port: int):
        return self._open("direct-tcpip", f"{dest_host}:{dest_port}",
                          lambda upstream, *more: relay.forward_tcp(upstream, dest_host, dest_port, *more))

    def direct_unix(self, dest_path: str):
        return self._open("direct-streamlocal", dest_path,
                          lambda upstream, *more: relay.forward_unix(upstream, dest_path, *more))

    async def _upstream(self) -> asyncssh.SSHClientConnection:
        try:
            return await self.owner.upstream.ready(None)
        except RouteError as exc:
            raise asyncssh.ChannelOpenError(OPEN_CONNECT_FAILED, f"devhub: {exc}") from None

    async def _open(self, kind: str, dest: str, opener):
        """A forwarded channel: its slot, then its upstream side via `opener(upstream, counters, on_close)`.
        If that fails the slot goes back and the client gets a channel-open failure (an exception of
        another kind would end the connection)."""
        owner = self.owner
        token = owner.channel_slot(kind)
        closed_metric = None

        def closed() -> None:
            if closed_metric:
                closed_metric()
            owner.release_channel(token)

        try:
            upstream = await self._upstream()
            self.gw.audit("forward", user=owner.user, sid=owner.sid, kind=kind, dest=dest)
            forwarder = await opener(upstream, relay.Counters(on_bytes=owner.relayed), closed)
        except BaseException as exc:
            owner.release_channel(token)
            if isinstance(exc, (OSError, asyncssh.Error)) and not isinstance(exc, asyncssh.ChannelOpenError):
                raise asyncssh.ChannelOpenError(OPEN_CONNECT_FAILED, f"devhub: {exc}") from None
            raise
        closed_metric = self.gw.metrics.session_opened("forward")  # counted once open, closed by `closed`
        return forwarder
