"""Router backed by JupyterHub's REST API, with the gateway's service token.

Endpoints (``api`` is JUPYTERHUB_API_URL, e.g. ``http://hub:8081/hub/api``):

- ``GET  {api}/devhub/ssh/users/{name}/keys``  -> ``{"keys": ["ssh-ed25519 AAAA...", ...]}``; 404: unknown user
- ``GET  {api}/devhub/ssh/users/{name}/route`` -> ``{"host": str, "port": int, "host_key": str}``;
  404 or 409 while the user's server is not running
- ``POST {api}/users/{name}/server``           standard: start the default server (201/202; 400 if running)
- ``GET  {api}/users/{name}/server/progress``  standard: text/event-stream of JSON events
  (``progress``, ``message``, ``ready``, ``failed``)
- ``POST {api}/users/{name}/activity``         standard: ``{"last_activity": iso, "servers": {"": {"last_activity": iso}}}``

Plain blocking ``urllib`` run in worker threads keeps the image's dependencies to asyncssh alone;
the gateway makes a handful of hub calls per SSH connection, never per packet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from .router import Progress, Route, RouteError, Router, report

log = logging.getLogger("devhub_gateway.hub")


class HubError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class HubRouter(Router):
    def __init__(self, api_url: str, token: str, start_timeout: float = 300, request_timeout: float = 15):
        self.api = api_url.rstrip("/")
        self.token = token
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout

    # -- HTTP plumbing (blocking; always called through asyncio.to_thread) --

    def _url(self, path: str, name: str) -> str:
        return f"{self.api}{path.format(name=urllib.parse.quote(name, safe=''))}"

    def _request(self, method: str, path: str, name: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._url(path, name), data=data, method=method, headers={
            "Authorization": f"token {self.token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw[:200].decode(errors="replace")}
        return status, payload if isinstance(payload, dict) else {"value": payload}

    async def _call(self, method: str, path: str, name: str, body: dict | None = None) -> tuple[int, dict]:
        try:
            return await asyncio.to_thread(self._request, method, path, name, body)
        except OSError as exc:  # connection refused, timeouts, DNS
            raise RouteError(f"the hub cannot be reached ({exc})") from exc

    def _events(self, name: str, deadline: float):
        """Blocking generator over the progress event stream's JSON events."""
        request = urllib.request.Request(self._url("/users/{name}/server/progress", name), headers={
            "Authorization": f"token {self.token}", "Accept": "text/event-stream"})
        with urllib.request.urlopen(request, timeout=max(1.0, deadline - time.monotonic())) as response:
            for raw in response:
                line = raw.decode(errors="replace").strip()
                if line.startswith("data:"):
                    try:
                        yield json.loads(line[5:].strip())
                    except ValueError:
                        continue
                if time.monotonic() > deadline:
                    return

    # -- Router --

    async def authorized_keys(self, username: str) -> list[str]:
        try:
            status, payload = await self._call("GET", "/devhub/ssh/users/{name}/keys", username)
        except RouteError as exc:
            log.warning("keys for %s: %s", username, exc)
            return []
        if status != 200:
            if status != 404:
                log.warning("keys for %s: HTTP %s %s", username, status, payload)
            return []
        keys = payload.get("keys", [])
        return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []

    async def _current_route(self, username: str) -> Route | None:
        status, payload = await self._call("GET", "/devhub/ssh/users/{name}/route", username)
        if status in (404, 409):
            return None
        if status != 200:
            raise RouteError(f"the hub refused to route you (HTTP {status}: {payload.get('message') or 'no reason given'})")
        try:
            return Route(str(payload["host"]), int(payload["port"]), str(payload["host_key"]).strip(),
                         str(payload.get("user", "jovyan")))
        except (KeyError, TypeError, ValueError) as exc:
            raise RouteError(f"the hub sent an invalid route ({exc!r})") from exc

    async def route(self, username: str, progress: Progress) -> Route:
        current = await self._current_route(username)
        if current:
            return current
        await report(progress, "your server is not running; starting it")
        status, payload = await self._call("POST", "/users/{name}/server", username, {})
        message = str(payload.get("message", ""))
        if status not in (201, 202) and not (status == 400 and "already running" in message):
            if status == 400 and "pending" in message:
                await report(progress, f"the hub says: {message}")
            else:
                raise RouteError(f"the hub could not start your server (HTTP {status}: {message or 'no reason given'})")
        deadline = time.monotonic() + self.start_timeout
        await self._follow_progress(username, progress, deadline)
        while time.monotonic() < deadline:  # ready: the route appears once the hub records the container
            current = await self._current_route(username)
            if current:
                return current
            await asyncio.sleep(0.5)
        raise RouteError(f"your server did not become ready within {self.start_timeout:.0f} s")

    async def _follow_progress(self, username: str, progress: Progress, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def pump() -> None:
            try:
                for event in self._events(username, deadline):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except Exception as exc:  # noqa: BLE001 - reported to the waiting coroutine
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, pump)
        try:
            while True:
                item = await asyncio.wait_for(queue.get(), max(0.1, deadline - time.monotonic()))
                if item is None:
                    return
                if isinstance(item, Exception):
                    if isinstance(item, urllib.error.HTTPError) and item.code in (400, 404):
                        return  # no spawn pending (already ready); the route tells
                    raise RouteError(f"lost the hub's progress stream ({item})")
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
        except asyncio.TimeoutError:
            raise RouteError("your server did not become ready in time") from None
        finally:
            worker.cancel()

    async def activity(self, username: str) -> None:
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        body = {"last_activity": now, "servers": {"": {"last_activity": now}}}
        try:
            status, payload = await self._call("POST", "/users/{name}/activity", username, body)
        except RouteError as exc:
            log.warning("activity for %s: %s", username, exc)
            return
        if status >= 300:
            log.warning("activity for %s: HTTP %s %s", username, status, payload)
