"""The listening gateway: the asyncssh acceptor, and what every client connection shares (router,
limits, audit, metrics, activity, the live connections, whose access it checks again and again)."""

from __future__ import annotations

import asyncio
import logging

import asyncssh

from . import metrics
from .activity import ActivityReporter
from .algorithms import UPSTREAM_CIPHERS, server_algorithms
from .audit import Audit, RefusalLog
from .config import Settings
from .connection import GatewayConnection
from .limits import FailureLimiter, Slots
from .router import Route, RouteError, Router
from .target import Target

log = logging.getLogger("devhub_gateway.listener")


class Gateway:
    """Shared state of one listening gateway: router, limits, keys, live connections."""

    def __init__(self, settings: Settings, router: Router, host_key: asyncssh.SSHKey,
                 client_key: asyncssh.SSHKey, audit: Audit | None = None):
        self.settings = settings
        self.router = router
        self.host_key = host_key
        self.client_key = client_key
        self.audit = audit or Audit()
        self.addresses = FailureLimiter(settings.auth_failures, settings.auth_window, settings.auth_block)
        self.users = FailureLimiter(settings.user_auth_failures, settings.auth_window, settings.auth_block)
        self.connections_per_user = Slots(settings.max_sessions_per_user)  # GATEWAY_MAX_SESSIONS_PER_USER
        self.preauth = Slots(settings.max_preauth_per_address, settings.max_preauth)
        self.channels = Slots(settings.max_channels_per_user, settings.max_channels)
        self.refused = RefusalLog(self.audit, settings.refusal_log_interval)
        self.activity = ActivityReporter(router, settings.activity_interval,
                                         on_report=lambda login: self.audit("activity", **Target.of(login).audit_fields()))
        self.metrics = metrics.Metrics(self.connections_per_user, self.channels, self.addresses,
                                       settings.metrics_user_labels)
        self.connections: set[GatewayConnection] = set()
        self.acceptor: asyncssh.SSHAcceptor | None = None
        self.metrics_server: asyncio.AbstractServer | None = None
        self.access_checker: asyncio.Future | None = None

    async def start(self) -> int:
        s = self.settings
        if s.metrics_listen:  # first: a metrics address that cannot be bound stops the gateway (exit 2)
            self.metrics_server = await metrics.serve(self.metrics, *s.metrics_listen)
        self.acceptor = await asyncssh.create_server(
            lambda: GatewayConnection(self), s.listen or None, s.port,
            server_host_keys=[self.host_key], **server_algorithms(),
            allow_pty=True, line_editor=False, encoding=None, window=s.channel_window,
            agent_forwarding=False, x11_forwarding=False,
            # from the TCP accept (asyncssh starts the timer when it makes the connection object):
            # a client that stalls in the handshake is cut off too, not only one slow to authenticate
            login_timeout=s.login_timeout, keepalive_interval=30, keepalive_count_max=4,
            server_version="devhub-sshgw", reuse_address=True)
        port = self.acceptor.sockets[0].getsockname()[1]
        self.audit("listening", port=port, kex=server_algorithms()["kex_algs"])
        self.access_checker = asyncio.ensure_future(self._check_access_forever())
        return port

    async def _check_access_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.access_check_interval)
            try:
                await self.check_access()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("checking live connections' access failed")

    async def check_access(self) -> None:
        """End the live connections of users the hub refuses now (blocked, no longer allowed,
        deleted) and those whose key was removed, telling them why."""
        live = [c for c in self.connections if c.authenticated and c.key_blob]
        reasons = await asyncio.gather(*(self.router.access_refusal(c.user, c.holds_key) for c in live),
                                       return_exceptions=True)
        for connection, reason in zip(live, reasons):
            if isinstance(reason, str):
                connection.end_access(reason)

    async def close(self) -> None:
        if self.access_checker:
            self.access_checker.cancel()
        if self.acceptor:
            self.acceptor.close()
        for connection in list(self.connections):
            connection.close("the SSH gateway is restarting; reconnect in a few seconds")
        if self.acceptor:
            await self.acceptor.wait_closed()
        if self.metrics_server:
            self.metrics_server.close()
        await self.activity.close()
        await self.router.close()
        self.refused.close()
        self.audit("stopped")

    def upstream_options(self, route: Route) -> asyncssh.SSHClientConnectionOptions:
        """How to reach a user's sshd: the gateway's client key, the host key the hub recorded."""
        try:
            host_key = asyncssh.import_public_key(route.host_key_line)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise RouteError(f"the hub's record of your server's host key is not a valid key ({exc})") from None
        return asyncssh.SSHClientConnectionOptions(
            username=route.user, client_keys=[self.client_key], known_hosts=([host_key], [], []),
            agent_path=None, agent_forwarding=False, config=None, preferred_auth="publickey",
            encryption_algs=UPSTREAM_CIPHERS, compression_algs=None, window=self.settings.channel_window,
            connect_timeout=15, keepalive_interval=30, keepalive_count_max=4)
