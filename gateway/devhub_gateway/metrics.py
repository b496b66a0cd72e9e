"""Prometheus metrics of the gateway, and GET /metrics in Prometheus' text format.

Counters and the spawn histogram are counted as things happen. The gauges of what is open now
(connections per user, channels, blocked addresses) are read at scrape time from the bookkeeping the
limits already keep (limits.Slots, FailureLimiter): one count of each, not a second that could drift.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4  # ASCII names: what every Prometheus reads

from .config import ConfigError
from .limits import FailureLimiter, Slots

log = logging.getLogger("devhub_gateway.metrics")

# Label values are fixed sets: nothing a client sends (a user name, a subsystem name) becomes a label,
# except the user label of devhub_gateway_user_connections, which GATEWAY_METRICS_USER_LABELS=0 drops.
KINDS = ("shell", "exec", "sftp", "forward")
AUTH_FAILURES = ("unknown_user", "bad_key", "refused", "blocked", "weak_signature")
# Spawn-on-connect: seconds to minutes (an image pull), up to GATEWAY_START_TIMEOUT's default.
SPAWN_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300)


def session_kind(command: str | None, subsystem: str | None) -> str:
    """A session channel's kind: an sftp subsystem, a command (another subsystem counts as one), a shell."""
    if subsystem == "sftp":
        return "sftp"
    return "exec" if command or subsystem else "shell"


class Metrics:
    def __init__(self, connections: Slots, channels: Slots, addresses: FailureLimiter, user_labels: bool = True):
        self.registry = CollectorRegistry()
        self.sessions_total = Counter("devhub_gateway_sessions_total", "Session and forwarded channels opened",
                                      ["kind"], registry=self.registry)
        self.auth_failures_total = Counter("devhub_gateway_auth_failures_total", "Refused authentication attempts",
                                           ["reason"], registry=self.registry)
        self.bytes_total = Counter("devhub_gateway_bytes_total",
                                   "Bytes relayed (in: client to server, out: server to client)",
                                   ["direction"], registry=self.registry)
        self.spawn_seconds = Histogram("devhub_gateway_spawn_seconds",
                                       "Connecting to a user whose server had to be started first",
                                       buckets=SPAWN_BUCKETS, registry=self.registry)
        for kind in KINDS:  # every series from the start: rate() and increase() need the zero
            self.sessions_total.labels(kind)
        for reason in AUTH_FAILURES:
            self.auth_failures_total.labels(reason)
        self._in, self._out = self.bytes_total.labels("in"), self.bytes_total.labels("out")
        self.open_sessions = dict.fromkeys(KINDS, 0)
        # A collector, not Gauges: the sessions gauge and the sessions_total counter share the family
        # name prometheus_client's own classes check for duplicates; the text format keeps them apart.
        self.registry.register(_Live(self, connections, channels, addresses, user_labels))

    def session_opened(self, kind: str) -> Callable[[], None]:
        """Count an open channel of `kind`; returns what counts it closed (idempotent)."""
        self.sessions_total.labels(kind).inc()
        self.open_sessions[kind] += 1
        closed = False

        def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                self.open_sessions[kind] -= 1
        return close

    def auth_failed(self, reason: str) -> None:
        self.auth_failures_total.labels(reason).inc()

    def relayed(self, up: int, down: int) -> None:
        if up:
            self._in.inc(up)
        if down:
            self._out.inc(down)

    def spawned(self, seconds: float) -> None:
        self.spawn_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Live:
    """The gauges, read from the gateway's live state when scraped."""

    def __init__(self, metrics: Metrics, connections: Slots, channels: Slots, addresses: FailureLimiter,
                 user_labels: bool):
        self.metrics, self.connections, self.channels, self.addresses = metrics, connections, channels, addresses
        self.user_labels = user_labels

    def collect(self):
        yield GaugeMetricFamily("devhub_gateway_connections", "Open (logged-in) client SSH connections",
                                value=self.connections.total)
        if self.user_labels:
            per_user = GaugeMetricFamily("devhub_gateway_user_connections", "Open client SSH connections per user",
                                         labels=["user"])
            for user, count in sorted(self.connections.live.items()):
                per_user.add_metric([user], count)
            yield per_user
        sessions = GaugeMetricFamily("devhub_gateway_sessions", "Open session and forwarded channels", labels=["kind"])
        for kind, count in self.metrics.open_sessions.items():
            sessions.add_metric([kind], count)
        yield sessions
        yield GaugeMetricFamily("devhub_gateway_channels", "Open channels (sessions and forwards, all users)",
                                value=self.channels.total)
        yield GaugeMetricFamily("devhub_gateway_blocked_addresses",
                                "Addresses blocked now for failed logins (GATEWAY_AUTH_*)",
                                value=self.addresses.blocked_count())


async def serve(metrics: Metrics, host: str, port: int) -> asyncio.AbstractServer:
    """Serve GET /metrics on the addresses `host` resolves to (never all addresses unless asked:
    compose names an alias on the hub network only, so users' networks cannot reach it)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target = (head.split(b"\r\n", 1)[0].split(b" ") + [b"", b""])[:2]
            if method in (b"GET", b"HEAD") and target.split(b"?", 1)[0] == b"/metrics":
                status, kind, body = "200 OK", CONTENT_TYPE_PLAIN_0_0_4, metrics.render()
            else:
                status, kind, body = "404 Not Found", "text/plain; charset=utf-8", b"not found: GET /metrics\n"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + (body if method != b"HEAD" else b""))
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that sends no complete request within 10 s or 64 KiB gets nothing
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port)
    except OSError as exc:
        raise ConfigError(f"GATEWAY_METRICS_LISTEN={host}:{port}: cannot listen there ({exc.strerror or exc})") from None
    log.info("metrics on %s", ", ".join("%s:%d" % s.getsockname()[:2] for s in server.sockets))
    return server
