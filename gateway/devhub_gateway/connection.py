"""One client SSH connection: admission at accept (blocked addresses, pre-auth caps), public-key
authentication against the user's keys in the hub, caps on connections and channels, and its session
channels, relayed to the user's sshd over its upstream (upstream.py); forwarded channels are
forwarding.py's. Access that ends while it is open is told to every session."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING

import asyncssh
from asyncssh.constants import DISC_TOO_MANY_CONNECTIONS, OPEN_ADMINISTRATIVELY_PROHIBITED

from . import metrics, relay
from .algorithms import key_blobs, refuse_weak_signatures
from .forwarding import Forwarding
from .limits import pad_failure
from .router import AccessRefused, RouteError
from .target import Target
from .upstream import Upstream, write

if TYPE_CHECKING:
    from .listener import Gateway

log = logging.getLogger("devhub_gateway.connection")
MAX_KEY_TRIES = 6  # refused keys per connection before it is closed


class GatewayConnection(asyncssh.SSHServer):
    """One client connection: authentication, then its upstream connection and channels."""

    def __init__(self, gateway: Gateway):
        self.gw = gateway
        self.conn: asyncssh.SSHServerConnection | None = None
        self.sid = uuid.uuid4().hex[:12]
        self.source = "?"
        self.ip = ""
        self.user: str | None = None  # the hub user (whose keys log in)
        self.target: Target | None = None  # which of their servers: the login names it (alice+exp1)
        self.authenticated = False
        self.refused_keys = 0
        self._keys: dict[str, set[bytes]] = {}
        self._refusal: tuple[str, set[bytes]] | None = None  # (why, the refused user's keys)
        self.upstream = Upstream(self)
        self.forwarding = Forwarding(self)
        self.started = time.time()
        self.sessions = 0  # session channels opened so far: their numbers in the audit log
        self.preauth_slot = False
        self.channels: set[object] = set()  # one token per open channel (see channel_slot)
        self.key_blob = b""  # the key this connection logged in with
        self.processes: set[asyncssh.SSHServerProcess] = set()  # open sessions, to tell them why access ends
        self.client_gone = False  # the client's connection is closed (then the upstream is closed by us)

    # -- connection lifecycle --

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        """Called at the TCP accept, before asyncssh sends its banner: a refusal raised here closes
        the socket without a byte of SSH (no key exchange for blocked or excess connections)."""
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.ip = str(peer[0])
        self.source = f"{peer[0]}:{peer[1]}"
        if self.gw.addresses.blocked(self.ip):
            self._drop("address blocked")
        if not self.gw.preauth.try_acquire(self.ip):
            self._drop("too many unauthenticated connections" +
                       (" in total" if self.gw.preauth.refusal(self.ip) == "total" else " from this address"))
        self.preauth_slot = True
        self.gw.connections.add(self)

    def _drop(self, reason: str) -> None:
        self.gw.refused(reason, self.ip)
        raise Dropped(reason)  # asyncssh aborts the connection (internal error path, no banner)

    def _release_preauth(self) -> None:
        if self.preauth_slot:
            self.preauth_slot = False
            self.gw.preauth.release(self.ip)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client_gone = True
        self.gw.connections.discard(self)
        if self.preauth_slot and isinstance(exc, asyncssh.ConnectionLost) and "Login timeout" in str(exc):
            self.gw.refused("login timeout", self.ip)
        self._release_preauth()
        for token in list(self.channels):
            self.release_channel(token)
        self.upstream.close()
        if self.authenticated:
            self.gw.connections_per_user.release(self.user)
            self.gw.activity.closed(self.target.login)
            self.gw.audit("logout", **self.target.audit_fields(), source=self.source, sid=self.sid,
                          start=round(self.started, 3), end=round(time.time(), 3),
                          error=str(exc) if exc else None)

    def close(self, reason: str) -> None:
        if self.conn:
            self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, reason)

    def holds_key(self, lines: list[str]) -> bool:
        return self.key_blob in key_blobs(lines)

    def end_access(self, reason: str) -> None:
        """Tell every open session why, end them, then the connection (a second later, so the
        message is delivered before the disconnect)."""
        self.gw.audit("access_ended", user=self.user, source=self.source, sid=self.sid, reason=reason)
        for process in list(self.processes):
            write(process.stderr, f"\r\ndevhub: your SSH access ended: {reason}\r\n")
            try:
                process.exit(255)
            except (OSError, asyncssh.Error):
                pass
        asyncio.get_running_loop().call_later(1.0, self.close, f"devhub: SSH access ended: {reason}")

    # -- authentication: public keys only --

    def begin_auth(self, username: str) -> bool:
        self.target = Target.of(username)
        self.user = self.target.user
        if self.gw.addresses.blocked(self.ip):  # blocked while this connection was in its handshake
            self.gw.metrics.auth_failed("blocked")
            self.gw.refused("address blocked", self.ip, user=username, sid=self.sid)
            raise asyncssh.PermissionDenied(
                "too many failed logins from your address; try again in a few minutes")
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def _weak_signature(self, username: str, algorithm: str) -> None:
        """A login signed with an algorithm the gateway does not accept (algorithms.USER_SIG_ALGS)."""
        self.gw.metrics.auth_failed("weak_signature")
        self.gw.addresses.fail(self.ip)
        self.gw.audit("auth_failed", user=username, source=self.source, sid=self.sid,
                      reason=f"signature algorithm {algorithm} not allowed")

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        username = Target.of(username).user  # alice+exp1 logs in with alice's keys
        started = time.monotonic()
        refuse_weak_signatures(key, lambda algorithm: self._weak_signature(username, algorithm))
        if username not in self._keys:
            try:
                self._keys[username] = key_blobs(await self.gw.router.authorized_keys(username))
            except AccessRefused as exc:
                self._keys[username] = set()
                self._refusal = (str(exc), key_blobs(exc.keys))
            except Exception:  # noqa: BLE001 - a broken router refuses, it never crashes the server
                log.exception("authorized_keys(%r) failed", username)
                self._keys[username] = set()
        if key.public_data in self._keys[username] and not self.gw.addresses.blocked(self.ip):
            self.key_blob = key.public_data
            return True
        reason = None
        if self._refusal and key.public_data in self._refusal[1]:
            # Only the holder of one of the user's keys learns why (no account probing).
            reason = self._refusal[0]
            self.conn.send_auth_banner(f"devhub: SSH refused: {reason}\r\n")
        self.gw.metrics.auth_failed(self._failure_kind(username, key.public_data))
        self.refused_keys += 1
        self.gw.addresses.fail(self.ip)
        slow = self.gw.users.fail(username)
        self.gw.audit("auth_failed", user=username, source=self.source, sid=self.sid,
                      key=key.get_fingerprint() if hasattr(key, "get_fingerprint") else None, reason=reason)
        await pad_failure(started, self.gw.settings.fail_delay * (4 if slow else 1))
        if self.refused_keys >= MAX_KEY_TRIES or self.gw.addresses.blocked(self.ip):
            raise asyncssh.PermissionDenied("too many authentication failures")
        return False

    def _failure_kind(self, username: str, blob: bytes) -> str:
        """The metrics' reason for a refused key (a fixed set: never the user name)."""
        if blob in self._keys[username]:
            return "blocked"  # her key, but the address is blocked
        if self._refusal:
            return "refused" if blob in self._refusal[1] else "bad_key"
        # No keys: an unknown user, one without keys, or a key lookup that failed (alike to clients too).
        return "bad_key" if self._keys[username] else "unknown_user"

    def auth_completed(self) -> None:
        user = self.user
        self._release_preauth()
        if not self.gw.connections_per_user.try_acquire(user):
            self.gw.refused("session limit", self.ip, user=user, sid=self.sid)
            self.conn.disconnect(DISC_TOO_MANY_CONNECTIONS,
                                 f"too many concurrent SSH connections for {user} "
                                 f"(limit {self.gw.connections_per_user.cap}); close some and retry")
            return
        self.authenticated = True
        self.started = time.time()
        self.gw.activity.opened(self.target.login)
        self.gw.audit("login", **self.target.audit_fields(), source=self.source, sid=self.sid,
                      client=self.conn.get_extra_info("client_version"))
        self.upstream.open()

    # -- channels: each open one holds a slot (per connection, per user, overall) --

    def channel_slot(self, kind: str) -> object:
        """A token for one more open channel, or ChannelOpenError (administratively prohibited) with
        the cap that is full. The windows bound what each open channel can buffer; these caps bound
        how many there are."""
        s = self.gw.settings
        if len(self.channels) >= s.max_channels_per_connection:
            reason = f"too many open channels on this connection (limit {s.max_channels_per_connection})"
        else:
            full = self.gw.channels.refusal(self.user)
            reason = (None if not full else
                      f"too many open channels for {self.user} (limit {s.max_channels_per_user} over all "
                      f"connections)" if full == "key" else
                      f"the SSH gateway has too many open channels (limit {s.max_channels}); try again later")
        if reason:
            self.gw.refused("channel limit", self.ip, user=self.user, sid=self.sid, kind=kind, detail=reason)
            raise asyncssh.ChannelOpenError(OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            f"devhub: {reason}; close some sessions or forwarded connections")
        self.gw.channels.try_acquire(self.user)
        token = object()
        self.channels.add(token)
        return token

    def release_channel(self, token: object) -> None:
        if token in self.channels:  # idempotent: the channel's close and the connection's end both call it
            self.channels.discard(token)
            self.gw.channels.release(self.user)

    def session_requested(self):
        if not self.authenticated:
            return False
        token = self.channel_slot("session")
        return relay.RelayProcess(self._run_session, relay.Counters(on_bytes=self.relayed),
                                  on_close=lambda: self.release_channel(token))

    def relayed(self, up: int, down: int) -> None:
        """Every relayed chunk, any channel: counted, and the user is active (activity.py)."""
        self.gw.metrics.relayed(up, down)
        self.gw.activity.traffic(self.target.login)

    async def _run_session(self, process: relay.RelayProcess) -> None:
        self.sessions += 1
        number = self.sessions
        counters = process.counters
        kind = "subsystem" if process.subsystem else ("exec" if process.command else "shell")
        closed_metric = self.gw.metrics.session_opened(metrics.session_kind(process.command, process.subsystem))
        started = time.time()
        self.gw.audit("session_start", user=self.user, source=self.source, sid=self.sid, session=number,
                      kind=kind, command=(process.command or process.subsystem or "")[:200],
                      pty=bool(process.term_type))
        status: int | None = None
        signal = None
        self.processes.add(process)
        try:
            try:
                upstream = await self.upstream.ready(process.stderr)
                if kind == "shell" and self.upstream.notice:
                    write(process.stderr, f"devhub: {self.upstream.notice}\r\n")
                status, signal = await relay.relay_session(process, upstream)
            except RouteError as exc:
                write(process.stderr, f"devhub: {exc}\r\n")
                status = 255
            except (asyncssh.Error, OSError) as exc:
                if self.upstream.lost is None:  # this channel failed, not the whole upstream
                    write(process.stderr, f"devhub: the connection to your server failed ({exc})\r\n")
                status = 255
            if self.upstream.lost is not None:  # her server went away under this session: one line saying why
                line = await asyncio.shield(self.upstream.lost)
                write(process.stderr, ("\r\n" if process.term_type else "") + line + "\r\n")
                status, signal = 255, None
        finally:
            closed_metric()
            self.processes.discard(process)
            self.gw.audit("session_end", user=self.user, source=self.source, sid=self.sid, session=number,
                          kind=kind, start=round(started, 3), end=round(time.time(), 3),
                          bytes_up=counters.up, bytes_down=counters.down, exit_status=status,
                          exit_signal=signal[0] if signal else None)
        relay.finish(process, status, signal)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int):
        return self.authenticated and self.forwarding.direct_tcp(dest_host, dest_port)

    def unix_connection_requested(self, dest_path: str):
        return self.authenticated and self.forwarding.direct_unix(dest_path)

    def server_requested(self, listen_host: str, listen_port: int):
        # `-R`: refused, as users' sshd refuses it (AllowTcpForwarding local): nothing listens in a
        # user's container on behalf of a remote peer.
        self.gw.refused("remote forwarding refused", self.ip, user=self.user, sid=self.sid,
                        listen=f"{listen_host}:{listen_port}")
        return False

    def unix_server_requested(self, listen_path: str):
        return False


class Dropped(Exception):
    """A connection refused at accept (blocked address, pre-auth caps)."""
