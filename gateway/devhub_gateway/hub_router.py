"""Router backed by JupyterHub's REST API, with the gateway's service token.

Endpoints (``api`` is JUPYTERHUB_API_URL, e.g. ``http://hub:8081/hub/api``):

- ``GET  {api}/devhub/ssh/users/{name}/keys``  -> ``{"keys": ["ssh-ed25519 AAAA...", ...]}``; 404: unknown user;
  403 ``{"message": "SSH refused: <why>", "ssh_refused": "<why>", "keys": [...]}``: the authenticator refuses the user now
- ``GET  {api}/devhub/ssh/users/{name}/route`` -> ``{"host": str, "port": int, "host_key": str, "notice": str}``;
  404 or 409 while the user's server is not running; the 409 says ``"stop_pending": bool`` and, when
  the hub knows, ``"last_stop": {"reason": str, "by": str, "at": iso}`` (told to a session whose
  server went away). A named server's (login ``alice+exp1``, devhub_gateway.target):
  ``{api}/devhub/ssh/users/{name}/servers/{server}/route``, the same, and 404 ``{"unknown_server": true,
  "message": ...}`` for a server the user never created (told to the client; never started)
- ``POST {api}/users/{name}/server``           standard: start the default server (201/202; 400 if running),
  with no body: the hub starts it with its last options (its profile); a named server's:
  ``{api}/users/{name}/servers/{server}``, likewise ``.../progress``
- ``GET  {api}/users/{name}``                   standard: a start answered 400 is decided by the server's
  ``pending``/``ready`` fields there (a stop under way is waited out, then the start retried), never
  by the message's words; 403 to a start means the hub could not refresh the user's login
- ``GET  {api}/users/{name}/server/progress``  standard: text/event-stream of JSON events
  (``progress``, ``message``, ``ready``, ``failed``)
- ``POST {api}/users/{name}/activity``         standard: ``{"last_activity": iso, "servers": {"<server>": {"last_activity": iso}}}``

All calls are asynchronous (tornado's HTTP client, the one JupyterHub itself uses): no thread is
held while the hub answers, so connections waiting for a slow server start never delay another
user's key lookup. Short calls and progress streams use separate clients (each queues past its
own connection cap), and a user has at most one start in flight: later connections for the same
user wait on it and see its progress.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import urllib.parse
from datetime import datetime, timezone

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .router import AccessRefused, KeyCheck, Progress, Route, RouteError, Router, report
from .target import Target

log = logging.getLogger("devhub_gateway.hub")


class _Start:
    """One in-flight server start: its task and the progress lines every waiter sees."""

    def __init__(self):
        self.messages: list[str] = []
        self.listeners: list[Progress] = []
        self.task: asyncio.Task | None = None

    async def note(self, message: str) -> None:
        self.messages.append(message)
        for listener in list(self.listeners):
            try:
                await report(listener, message)
            except Exception:  # noqa: BLE001 - one waiter's broken callback must not fail the start
                log.debug("progress listener failed", exc_info=True)


# After the hub reports a started server ready, its route (the container's address and host key) is
# usually there at once; when it is not (the host key is still being written), ask again soon.
ROUTE_AFTER_READY_POLL_S = 0.1


def _lines(keys) -> list[str]:
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def _stop_text(last) -> str | None:
    """The hub's last_stop as one phrase: its reason, and who stopped it unless the reason says."""
    if not isinstance(last, dict) or not str(last.get("reason") or "").strip():
        return None
    reason, by = str(last["reason"]).strip(), str(last.get("by") or "").strip()
    return f"{reason} by {by}" if by and "by " not in reason else reason


class HubRouter(Router):
    def __init__(self, api_url: str, token: str, start_timeout: float = 300, request_timeout: float = 15,
                 max_requests: int = 64, max_streams: int = 1000, public_url: str = ""):
        self.api = api_url.rstrip("/")
        self.login_url = f"{public_url}/hub/login" if public_url else "the hub's web page"
        self.token = token
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.max_requests, self.max_streams = max_requests, max_streams
        self._clients: tuple[asyncio.AbstractEventLoop, AsyncHTTPClient, AsyncHTTPClient] | None = None
        self._starts: dict[str, _Start] = {}

    # -- HTTP plumbing --

    def _http(self, stream: bool = False) -> AsyncHTTPClient:
        """The client for short calls or for progress streams, made on (and bound to) the running loop."""
        loop = asyncio.get_running_loop()
        if self._clients is None or self._clients[0] is not loop:
            self._clients = (loop, AsyncHTTPClient(force_instance=True, max_clients=self.max_requests),
                             AsyncHTTPClient(force_instance=True, max_clients=self.max_streams))
        return self._clients[2 if stream else 1]

    def _url(self, path: str, name: str, server: str = "") -> str:
        quote = urllib.parse.quote
        return f"{self.api}{path.format(name=quote(name, safe=''), server=quote(server, safe=''))}"

    async def _call(self, method: str, path: str, name: str, body: dict | None = None,
                    server: str = "") -> tuple[int, dict]:
        headers = {"Authorization": f"token {self.token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(self._url(path, name, server), method=method, headers=headers,
                              body=json.dumps(body) if body is not None else ("" if method == "POST" else None),
                              connect_timeout=self.request_timeout, request_timeout=self.request_timeout)
        try:
            response = await self._http().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:  # refused, DNS, timeouts (599)
            raise RouteError(f"the hub cannot be reached ({exc})") from exc
        raw = response.body or b""
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw[:200].decode(errors="replace")}
        return response.code, payload if isinstance(payload, dict) else {"value": payload}

    # -- Router --

    async def _keys(self, username: str) -> tuple[int, list[str], str | None]:
        """(HTTP status, the user's key lines, why the hub refuses SSH to them now or None); RouteError: away."""
        status, payload = await self._call("GET", "/devhub/ssh/users/{name}/keys", username)
        why = payload.get("ssh_refused") if status == 403 else None
        refused = str(why) if why else None
        if status not in (200, 404) and refused is None:
            log.warning("keys for %r: HTTP %s %r", username, status, payload)
        return status, _lines(payload.get("keys")), refused

    async def authorized_keys(self, username: str) -> list[str]:
        """The user's keys; AccessRefused when the hub refuses SSH to them now."""
        try:
            status, keys, refused = await self._keys(username)
        except RouteError as exc:
            log.warning("keys for %r: %s", username, exc)
            return []
        if refused is not None:
            raise AccessRefused(refused, keys)
        return keys if status == 200 else []

    async def access_refusal(self, username: str, holds_key: KeyCheck) -> str | None:
        status, keys, refused = await self._keys(username)
        if refused is not None:
            return refused
        if status == 404:
            return f"the account {username} no longer exists on the hub"
        if status == 200 and not holds_key(keys):
            return "the SSH key you logged in with was removed from the hub"
        return None

    @staticmethod
    def _route_path(target: Target) -> str:
        return "/devhub/ssh/users/{name}/servers/{server}/route" if target.server else "/devhub/ssh/users/{name}/route"

    @staticmethod
    def _server_path(target: Target) -> str:
        return "/users/{name}/servers/{server}" if target.server else "/users/{name}/server"

    async def _current_route(self, target: Target) -> Route | None:
        status, payload = await self._call("GET", self._route_path(target), target.user, server=target.server)
        if status == 404 and payload.get("unknown_server"):
            raise RouteError(str(payload.get("message") or f"there is no server named {target.server!r}"))
        if status in (404, 409):
            return None
        if status != 200:
            raise RouteError(f"the hub refused to route you (HTTP {status}: {payload.get('message') or 'no reason given'})")
        try:
            return Route(str(payload["host"]), int(payload["port"]), str(payload["host_key"]).strip(),
                         str(payload.get("user", "jovyan")), str(payload.get("notice") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise RouteError(f"the hub sent an invalid route ({exc!r})") from exc

    async def route(self, login: str | Target, progress: Progress) -> Route:
        target = Target.of(login)
        current = await self._current_route(target)
        if current:
            return current
        start = self._starts.get(target)
        if start is None:
            start = self._starts[target] = _Start()
            start.task = asyncio.ensure_future(self._start(target, start))
            start.task.add_done_callback(lambda task: self._start_done(target, start, task))
        else:
            log.info("start of %r already in flight; waiting on it", target.login)
        missed = list(start.messages)  # taken with the subscription, before any await: nothing lost between
        start.listeners.append(progress)
        try:
            for message in missed:
                await report(progress, message)
            # shield: a waiter that goes away (its client disconnected) leaves the start to the others
            return await asyncio.shield(start.task)
        finally:
            start.listeners.remove(progress)

    def _start_done(self, target: Target, start: _Start, task: asyncio.Task) -> None:
        if self._starts.get(target) is start:
            self._starts.pop(target)
        if not task.cancelled():
            task.exception()  # retrieved here too: every waiter may have gone away

    async def _start(self, target: Target, start: _Start) -> Route:
        await start.note(f"{target.your_server} is not running; starting it")
        deadline = time.monotonic() + self.start_timeout
        while True:
            # No body: the hub starts the server with its last options (e.g. the profile chosen for it).
            status, payload = await self._call("POST", self._server_path(target), target.user, server=target.server)
            if status in (201, 202):
                break
            message = str(payload.get("message") or "no reason given")
            if status == 403:  # the gateway may start servers: the hub could not refresh the user's login
                raise RouteError(f"your hub login has expired, so the hub cannot start {target.your_server}: "
                                 f"log in at {self.login_url}, then connect again")
            # 400 is about the server's state or a limit: the server's own fields say which, not the text.
            state = await self._server_state(target) if status == 400 else None
            if state is None:
                raise RouteError(f"the hub could not start {target.your_server} (HTTP {status}: {message})")
            if state.get("pending") != "stop":  # ready, or a start under way: its progress and route tell
                break
            await start.note(f"the hub says: {message}; starting it when that is done")
            while (state := await self._server_state(target)) and state.get("pending") == "stop":
                if time.monotonic() >= deadline:
                    raise RouteError(f"{target.your_server} was still stopping after {self.start_timeout:.0f} s")
                await asyncio.sleep(0.5)
        await self._follow_progress(target, start.note, deadline)
        while time.monotonic() < deadline:  # ready: the route appears once the hub records the container
            current = await self._current_route(target)
            if current:
                return dataclasses.replace(current, started=True)
            await asyncio.sleep(ROUTE_AFTER_READY_POLL_S)
        raise RouteError(f"your server did not become ready within {self.start_timeout:.0f} s")

    async def _server_state(self, target: Target) -> dict | None:
        """The server's model from the hub (``ready``, ``pending``, ...); None when it has none."""
        status, payload = await self._call("GET", "/users/{name}", target.user)
        servers = payload.get("servers") if status == 200 else None
        state = servers.get(target.server) if isinstance(servers, dict) else None
        return state if isinstance(state, dict) else None

    async def _follow_progress(self, target: Target, progress: Progress, deadline: float) -> None:
        """Relay the hub's progress events until `ready` (or the stream ends); `failed` raises."""
        events: asyncio.Queue = asyncio.Queue()  # event dicts, then None when the stream ends
        buffer = bytearray()

        def on_chunk(chunk: bytes) -> None:  # server-sent events: "data: {json}" lines
            buffer.extend(chunk)
            *lines, rest = bytes(buffer).split(b"\n")
            buffer[:] = rest
            for line in lines:
                line = line.strip()
                if line.startswith(b"data:"):
                    try:
                        events.put_nowait(json.loads(line[5:]))
                    except ValueError:
                        continue

        request = HTTPRequest(self._url(self._server_path(target) + "/progress", target.user, target.server),
                              headers={"Authorization": f"token {self.token}", "Accept": "text/event-stream"},
                              connect_timeout=self.request_timeout,
                              request_timeout=max(1.0, deadline - time.monotonic()), streaming_callback=on_chunk)
        stream = asyncio.ensure_future(self._http(stream=True).fetch(request, raise_error=False))
        stream.add_done_callback(lambda _: events.put_nowait(None))
        try:
            while (item := await self._next(events, deadline)) is not None:
                if not isinstance(item, dict):
                    continue
                text = str(item.get("message") or "").strip()
                if "progress" in item and text:
                    text = f"[{item['progress']}%] {text}"
                if text:
                    await report(progress, text)
                if item.get("failed"):
                    raise RouteError(f"your server failed to start: {item.get('message') or 'no reason given'}")
                if item.get("ready"):
                    return
        finally:
            if not stream.done():
                stream.cancel()
        try:
            response = stream.result()
        except (OSError, HTTPClientError) as exc:
            raise RouteError(f"lost the hub's progress stream ({exc})") from exc
        if response.code not in (200, 400, 404):  # 400/404: no spawn pending (already ready); the route tells
            raise RouteError(f"lost the hub's progress stream (HTTP {response.code})")

    @staticmethod
    async def _next(events: asyncio.Queue, deadline: float):
        try:
            return await asyncio.wait_for(events.get(), max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise RouteError("your server did not become ready in time") from None

    async def last_stop(self, login: str | Target, patience: float = 15, every: float = 0.5) -> str | None:
        """Asks the route while the hub says a stop is under way (or cannot be reached) for up to
        `patience` seconds; then its last_stop. A running server (200) or another answer: None."""
        target = Target.of(login)
        deadline = time.monotonic() + patience
        while True:
            try:
                status, payload = await self._call("GET", self._route_path(target), target.user, server=target.server)
            except RouteError:
                status, payload = None, {}
            if status is not None and (status != 409 or not payload.get("stop_pending")):
                return _stop_text(payload.get("last_stop")) if status == 409 else None
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(every)

    async def activity(self, login: str | Target) -> None:
        target = Target.of(login)
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        body = {"last_activity": now, "servers": {target.server: {"last_activity": now}}}
        try:
            status, payload = await self._call("POST", "/users/{name}/activity", target.user, body)
        except RouteError as exc:
            log.warning("activity for %r: %s", target.login, exc)
            return
        if status >= 300:
            log.warning("activity for %r: HTTP %s %r", target.login, status, payload)

    async def close(self) -> None:
        for start in list(self._starts.values()):
            if start.task:
                start.task.cancel()
        if self._clients:
            for client in self._clients[1:]:
                client.close()
            self._clients = None
