"""The asyncssh server: public-key auth against the router, upstream connection to the user's
sshd with the gateway's client key (host key pinned from the route), relay of sessions and
forwarded channels, hardened algorithms.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import asyncssh
from asyncssh.constants import DISC_TOO_MANY_CONNECTIONS, OPEN_ADMINISTRATIVELY_PROHIBITED, OPEN_CONNECT_FAILED
from asyncssh.packet import PacketDecodeError, SSHPacket

from . import metrics, relay
from .activity import ActivityReporter
from .audit import Audit, RefusalLog
from .config import Settings
from .limits import FailureLimiter, Slots, pad_failure
from .router import AccessRefused, Route, RouteError, Router

log = logging.getLogger("devhub_gateway.server")

# ssh-audit clean: no SHA-1, no CBC, no NIST curves or ECDSA host keys, no compression. Post-quantum
# hybrids first where this asyncssh build has them (they need liboqs).
KEX_PREFERRED = ["mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com",
                 "curve25519-sha256", "curve25519-sha256@libssh.org"]
CIPHERS = ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
           "aes256-ctr", "aes192-ctr", "aes128-ctr"]
MACS = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com"]
# Signatures accepted from users' keys (the hub accepts ed25519, ECDSA and RSA >= 3072); never ssh-rsa (SHA-1).
USER_SIG_ALGS = ["ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                 "ecdsa-sha2-nistp521", "sk-ecdsa-sha2-nistp256@openssh.com", "rsa-sha2-512", "rsa-sha2-256"]
# Upstream (gateway -> container, loopback or a private network): fastest AEAD first.
UPSTREAM_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]
MAX_KEY_TRIES = 6  # refused keys per connection before it is closed


def _supported(wanted: list[str], available: list[bytes]) -> list[str]:
    have = {a.decode() for a in available}
    return [a for a in wanted if a in have]


def algorithms() -> dict:
    from asyncssh.encryption import get_encryption_algs
    from asyncssh.kex import get_kex_algs
    from asyncssh.mac import get_mac_algs
    from asyncssh.public_key import get_public_key_algs

    return dict(kex_algs=_supported(KEX_PREFERRED, get_kex_algs()),
                encryption_algs=_supported(CIPHERS, get_encryption_algs()),
                mac_algs=_supported(MACS, get_mac_algs()),
                signature_algs=_supported(USER_SIG_ALGS, get_public_key_algs()),
                compression_algs=None)


def _key_blobs(lines: list[str]) -> set[bytes]:
    blobs = set()
    for line in lines:
        try:
            blobs.add(asyncssh.import_public_key(line.strip()).public_data)
        except (asyncssh.KeyImportError, ValueError, TypeError):
            log.warning("ignoring an unparsable authorized key line")
    return blobs


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
        self.sessions = Slots(settings.max_sessions_per_user)
        self.preauth = Slots(settings.max_preauth_per_address, settings.max_preauth)
        self.channels = Slots(settings.max_channels_per_user, settings.max_channels)
        self.refused = RefusalLog(self.audit, settings.refusal_log_interval)
        self.activity = ActivityReporter(router, settings.activity_interval,
                                         on_report=lambda user: self.audit("activity", user=user))
        self.metrics = metrics.Metrics(self.sessions, self.channels, self.addresses, settings.metrics_user_labels)
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
            server_host_keys=[self.host_key], **algorithms(),
            allow_pty=True, line_editor=False, encoding=None, window=s.channel_window,
            agent_forwarding=False, x11_forwarding=False,
            # from the TCP accept (asyncssh starts the timer when it makes the connection object):
            # a client that stalls in the handshake is cut off too, not only one slow to authenticate
            login_timeout=s.login_timeout, keepalive_interval=30, keepalive_count_max=4,
            server_version="devhub-sshgw", reuse_address=True)
        port = self.acceptor.sockets[0].getsockname()[1]
        self.audit("listening", port=port, kex=algorithms()["kex_algs"])
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
        try:
            host_key = asyncssh.import_public_key(route.host_key_line)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise RouteError(f"the hub's record of your server's host key is not a valid key ({exc})") from None
        return asyncssh.SSHClientConnectionOptions(
            username=route.user, client_keys=[self.client_key], known_hosts=([host_key], [], []),
            agent_path=None, agent_forwarding=False, config=None, preferred_auth="publickey",
            encryption_algs=UPSTREAM_CIPHERS, compression_algs=None, window=self.settings.channel_window,
            connect_timeout=15, keepalive_interval=30, keepalive_count_max=4)


class GatewayConnection(asyncssh.SSHServer):
    """One client connection: authentication, then its upstream connection and channels."""

    def __init__(self, gateway: Gateway):
        self.gw = gateway
        self.conn: asyncssh.SSHServerConnection | None = None
        self.sid = uuid.uuid4().hex[:12]
        self.source = "?"
        self.ip = ""
        self.user: str | None = None
        self.authenticated = False
        self.refused_keys = 0
        self._keys: dict[str, set[bytes]] = {}
        self._refusal: tuple[str, set[bytes]] | None = None  # (why, the refused user's keys)
        self.upstream_task: asyncio.Task | None = None
        self.upstream: asyncssh.SSHClientConnection | None = None
        self.progress: list[str] = []
        self.started = time.time()
        self.sessions = 0
        self.preauth_slot = False
        self.channels: set[object] = set()  # one token per open channel (see _channel_slot)
        self.key_blob = b""  # the key this connection logged in with
        self.notice = ""  # from the hub's route: shown when a shell opens
        self.processes: set[asyncssh.SSHServerProcess] = set()  # open sessions, to tell them why access ends
        self.client_gone = False  # the client's connection is closed (then the upstream is closed by us)
        self.server_lost: asyncio.Task | None = None  # the upstream went away under the client: the line to tell

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
            self._release_channel(token)
        if self.upstream_task and not self.upstream_task.done():
            self.upstream_task.cancel()
        if self.server_lost and not self.server_lost.done():
            self.server_lost.cancel()
        if self.upstream:
            self.upstream.close()
        if self.authenticated:
            self.gw.sessions.release(self.user)
            self.gw.activity.closed(self.user)
            self.gw.audit("logout", user=self.user, source=self.source, sid=self.sid,
                          start=round(self.started, 3), end=round(time.time(), 3),
                          error=str(exc) if exc else None)

    def close(self, reason: str) -> None:
        if self.conn:
            self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, reason)

    def holds_key(self, lines: list[str]) -> bool:
        return self.key_blob in _key_blobs(lines)

    def end_access(self, reason: str) -> None:
        """Tell every open session why, end them, then the connection (a second later, so the
        message is delivered before the disconnect)."""
        self.gw.audit("access_ended", user=self.user, source=self.source, sid=self.sid, reason=reason)
        for process in list(self.processes):
            _write(process.stderr, f"\r\ndevhub: your SSH access ended: {reason}\r\n")
            try:
                process.exit(255)
            except (OSError, asyncssh.Error):
                pass
        asyncio.get_running_loop().call_later(1.0, self.close, f"devhub: SSH access ended: {reason}")

    # -- authentication: public keys only --

    def begin_auth(self, username: str) -> bool:
        self.user = username
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

    def _refuse_weak_signatures(self, key: asyncssh.SSHKey, username: str) -> None:
        """asyncssh's signature_algs only sets what is advertised: it verifies a signature made with any
        algorithm the key type knows, SHA-1 `ssh-rsa` included. It verifies the login signature with
        this very key object once validate_public_key accepts the key, so its verify() refuses others."""
        verify = key.verify

        def verify_allowed(data: bytes, sig: bytes) -> bool:
            try:
                algorithm = SSHPacket(sig).get_string().decode("ascii", "replace")
            except PacketDecodeError:
                algorithm = "?"
            if algorithm in USER_SIG_ALGS:
                return verify(data, sig)
            self.gw.metrics.auth_failed("weak_signature")
            self.gw.addresses.fail(self.ip)
            self.gw.audit("auth_failed", user=username, source=self.source, sid=self.sid,
                          reason=f"signature algorithm {algorithm} not allowed")
            return False

        key.verify = verify_allowed

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        started = time.monotonic()
        self._refuse_weak_signatures(key, username)
        if username not in self._keys:
            try:
                self._keys[username] = _key_blobs(await self.gw.router.authorized_keys(username))
            except AccessRefused as exc:
                self._keys[username] = set()
                self._refusal = (str(exc), _key_blobs(exc.keys))
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
        if not self.gw.sessions.try_acquire(user):
            self.gw.refused("session limit", self.ip, user=user, sid=self.sid)
            self.conn.disconnect(DISC_TOO_MANY_CONNECTIONS,
                                 f"too many concurrent SSH connections for {user} "
                                 f"(limit {self.gw.sessions.cap}); close some and retry")
            return
        self.authenticated = True
        self.started = time.time()
        self.gw.activity.opened(user)
        self.gw.audit("login", user=user, source=self.source, sid=self.sid,
                      client=self.conn.get_extra_info("client_version"))
        self.upstream_task = asyncio.ensure_future(self._open_upstream())
        self.upstream_task.add_done_callback(lambda t: t.cancelled() or t.exception())  # no "never retrieved"

    # -- upstream --

    async def _note(self, message: str) -> None:
        self.progress.append(message)

    async def _open_upstream(self) -> asyncssh.SSHClientConnection:
        t0 = time.monotonic()
        route = await self.gw.router.route(self.user, self._note)
        options = self.gw.upstream_options(route)
        try:
            upstream = await asyncssh.connect(route.host, route.port, options=options,
                                              client_factory=lambda: _UpstreamWatch(self._upstream_lost))
        except asyncssh.HostKeyNotVerifiable:
            self.gw.audit("upstream_refused", user=self.user, sid=self.sid, upstream=f"{route.host}:{route.port}",
                          reason="host key mismatch")
            raise RouteError("your server's SSH host key does not match the one the hub recorded for it; "
                             "refusing to connect (host key verification failed)") from None
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
            self.gw.audit("upstream_failed", user=self.user, sid=self.sid, upstream=f"{route.host}:{route.port}",
                          reason=str(exc) or type(exc).__name__)
            raise RouteError(f"cannot reach your server's SSH service at {route.host}:{route.port} "
                             f"({str(exc) or type(exc).__name__})") from None
        if self.conn is None or self.conn.is_closed():
            upstream.close()
            raise RouteError("client went away")
        self.upstream = upstream
        self.notice = route.notice
        if route.started:
            self.gw.metrics.spawned(time.monotonic() - t0)
        self.gw.audit("upstream", user=self.user, sid=self.sid, upstream=f"{route.host}:{route.port}")
        return upstream

    def _upstream_lost(self) -> None:
        """The connection to her sshd is gone. Unless we closed it because the client left, her server
        stopped (culled, stopped by an admin or by herself): find out why once, tell every session
        (_run_session), then end the connection, so her next one starts the server again."""
        if self.client_gone or self.server_lost is not None:
            return
        self.server_lost = asyncio.ensure_future(self._server_lost_line())
        self.server_lost.add_done_callback(
            lambda task: task.cancelled() or asyncio.get_running_loop().call_later(
                1.0, self.close, "devhub: your server went away; connect again to start it"))

    async def _server_lost_line(self) -> str:
        try:
            # The hub stops a blocked user's server itself (at its start): say why, not only that it went away.
            refusal = await self._refusal_after_loss()
            stop = None if refusal else await self.gw.router.last_stop(self.user)
        except Exception:  # noqa: BLE001 - a broken router still gets the session its generic line
            log.exception("why the server of %r went away", self.user)
            refusal = stop = None
        self.gw.audit("server_lost", user=self.user, source=self.source, sid=self.sid,
                      reason=f"SSH access ended: {refusal}" if refusal else stop)
        if refusal:
            return f"devhub: your SSH access ended: {refusal}"
        if stop:
            return f"devhub: your server was stopped: {stop}; connect again to start it."
        return "devhub: your server stopped; connect again to start it."

    async def upstream_for(self, stderr: asyncssh.SSHWriter | None = None) -> asyncssh.SSHClientConnection:
        """The upstream connection, writing progress to `stderr` while it is being set up."""
        task = self.upstream_task
        if task is None:
            raise RouteError("not authenticated")
        t0, shown, next_note = time.monotonic(), 0, 2.0
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            if stderr is None:
                continue
            while shown < len(self.progress):
                _write(stderr, f"devhub: {self.progress[shown]}\r\n")
                shown += 1
                next_note = time.monotonic() - t0 + 5
            waited = time.monotonic() - t0
            if not task.done() and waited >= next_note:
                _write(stderr, "devhub: connecting to your server...\r\n" if next_note < 3
                       else f"devhub: still waiting for your server ({waited:.0f} s)\r\n")
                next_note = waited + 5
        return task.result()

    # -- channels: each open one holds a slot (per connection, per user, overall) --

    def _channel_slot(self, kind: str) -> object:
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

    def _release_channel(self, token: object) -> None:
        if token in self.channels:  # idempotent: the channel's close and the connection's end both call it
            self.channels.discard(token)
            self.gw.channels.release(self.user)

    def session_requested(self):
        if not self.authenticated:
            return False
        token = self._channel_slot("session")
        return relay.RelayProcess(self._run_session, on_close=lambda: self._release_channel(token))

    def _relayed(self, up: int, down: int) -> None:
        """Every relayed chunk, any channel: counted, and the user is active (activity.py)."""
        self.gw.metrics.relayed(up, down)
        self.gw.activity.traffic(self.user)

    async def _run_session(self, process: asyncssh.SSHServerProcess) -> None:
        self.sessions += 1
        number = self.sessions
        counters = relay.Counters(on_bytes=self._relayed)
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
                upstream = await self.upstream_for(process.stderr)
                if kind == "shell" and self.notice:
                    _write(process.stderr, f"devhub: {self.notice}\r\n")
                status, signal = await relay.relay_session(process, upstream, counters)
            except RouteError as exc:
                _write(process.stderr, f"devhub: {exc}\r\n")
                status = 255
            except (asyncssh.Error, OSError) as exc:
                if self.server_lost is None:  # this channel failed, not the whole upstream
                    _write(process.stderr, f"devhub: the connection to your server failed ({exc})\r\n")
                status = 255
            if self.server_lost is not None:  # her server went away under this session: one line saying why
                line = await asyncio.shield(self.server_lost)
                _write(process.stderr, ("\r\n" if process.term_type else "") + line + "\r\n")
                status, signal = 255, None
        finally:
            closed_metric()
            self.processes.discard(process)
            self.gw.audit("session_end", user=self.user, source=self.source, sid=self.sid, session=number,
                          kind=kind, start=round(started, 3), end=round(time.time(), 3),
                          bytes_up=counters.up, bytes_down=counters.down, exit_status=status,
                          exit_signal=signal[0] if signal else None)
        relay.finish(process, status, signal)

    async def _refusal_after_loss(self, patience: float = 15) -> str | None:
        """Why access ended, when the upstream was lost because of it; asks the hub again while it
        is away (restarting), for up to `patience` seconds."""
        deadline = time.monotonic() + patience
        while self.key_blob:
            try:
                return await self.gw.router.access_refusal(self.user, self.holds_key)
            except RouteError:
                if time.monotonic() > deadline:
                    return None
                await asyncio.sleep(1)
        return None

    async def _channel_upstream(self) -> asyncssh.SSHClientConnection:
        try:
            return await self.upstream_for(None)
        except RouteError as exc:
            raise asyncssh.ChannelOpenError(OPEN_CONNECT_FAILED, f"devhub: {exc}") from None

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int):
        if not self.authenticated:
            return False
        return self._open_forward("direct-tcpip", f"{dest_host}:{dest_port}",
                                  lambda upstream, *more: relay.forward_tcp(upstream, dest_host, dest_port, *more))

    def unix_connection_requested(self, dest_path: str):
        if not self.authenticated:
            return False
        return self._open_forward("direct-streamlocal", dest_path,
                                  lambda upstream, *more: relay.forward_unix(upstream, dest_path, *more))

    async def _open_forward(self, kind: str, dest: str, opener):
        """A forwarded channel: its slot, then its upstream side via `opener(upstream, counters, on_close)`.
        If that fails the slot goes back and the client gets a channel-open failure (an exception of
        another kind would end the connection)."""
        token = self._channel_slot(kind)
        closed_metric = None

        def closed() -> None:
            if closed_metric:
                closed_metric()
            self._release_channel(token)

        try:
            upstream = await self._channel_upstream()
            self.gw.audit("forward", user=self.user, sid=self.sid, kind=kind, dest=dest)
            forwarder = await opener(upstream, relay.Counters(on_bytes=self._relayed), closed)
        except BaseException as exc:
            self._release_channel(token)
            if isinstance(exc, (OSError, asyncssh.Error)) and not isinstance(exc, asyncssh.ChannelOpenError):
                raise asyncssh.ChannelOpenError(OPEN_CONNECT_FAILED, f"devhub: {exc}") from None
            raise
        closed_metric = self.gw.metrics.session_opened("forward")  # counted once open, closed by `closed`
        return forwarder

    def server_requested(self, listen_host: str, listen_port: int):
        if not (self.authenticated and self.gw.settings.allow_remote_forward):
            self.gw.refused("remote forwarding disabled", self.ip, user=self.user, sid=self.sid,
                            listen=f"{listen_host}:{listen_port}")
            return False
        return self._remote_listener(listen_host, listen_port)

    async def _remote_listener(self, listen_host: str, listen_port: int):
        upstream = await self.upstream_for(None)
        listener: asyncssh.SSHListener | None = None

        def handler_factory(orig_host: str, orig_port: int):
            async def handler(reader, writer):
                try:
                    down_r, down_w = await self.conn.open_connection(
                        listen_host, listener.get_port() if listener else listen_port, orig_host, orig_port)
                except (asyncssh.Error, OSError):
                    writer.close()
                    return
                await asyncio.gather(_pipe(reader, down_w), _pipe(down_r, writer), return_exceptions=True)
            return handler

        listener = await upstream.start_server(handler_factory, listen_host, listen_port)
        self.gw.audit("forward", user=self.user, sid=self.sid, kind="tcpip-forward",
                      listen=f"{listen_host}:{listener.get_port()}")
        return listener

    def unix_server_requested(self, listen_path: str):
        return False


class _UpstreamWatch(asyncssh.SSHClient):
    """The upstream connection's owner: tells the client connection when it goes away."""

    def __init__(self, on_lost):
        self._on_lost = on_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()


class Dropped(Exception):
    """A connection refused at accept (blocked address, pre-auth caps)."""


async def _pipe(reader, writer) -> None:
    try:
        while data := await reader.read(relay.CHUNK):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
    finally:
        pass


def _write(stream: asyncssh.SSHWriter, text: str) -> None:
    try:
        stream.write(text.encode())
    except (OSError, asyncssh.Error):
        pass
