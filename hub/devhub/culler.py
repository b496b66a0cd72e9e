"""devhub's own idle cullers: hub-managed services in jupyterhub-idle-culler's mould that stop
servers through the REST API, so the audit log records a cull and the SSH gateway tells open
sessions why (devhub.stops). A server's timeout comes from its state (DevhubSpawner.get_state):

    --gpus      servers holding GPUs ("gpus") after --timeout (IDLE_CULL_TIMEOUT_GPU), so a
                forgotten notebook or SSH window frees its GPUs long before IDLE_CULL_TIMEOUT;
    --profiles  each server after its profile's idle_timeout ("idle_timeout"), else after --timeout
                (IDLE_CULL_TIMEOUT; 0: never), e.g. GPU servers after 1 h and CPU servers after 8 h.
                jupyterhub-idle-culler then only backs it up (devhub.services).

    python -m devhub.culler --gpus --timeout=900 --cull-every=225
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from datetime import datetime, timezone
from typing import Callable, Iterable, Optional
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

log = logging.getLogger("devhub.culler")

# A server's idle timeout in seconds from its REST API model; None: this culler spares it.
TimeoutOf = Callable[[dict], Optional[float]]


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def gpu_timeout(timeout: float) -> TimeoutOf:
    """Servers holding GPUs after `timeout`; the others are spared."""
    return lambda server: timeout if (server.get("state") or {}).get("gpus") else None


def profile_timeout(default: float) -> TimeoutOf:
    """Each server after its profile's idle_timeout, else after `default` (0: spared)."""
    return lambda server: (server.get("state") or {}).get("idle_timeout") or default or None


def idle_servers(users: Iterable[dict], now: datetime, timeout_of: TimeoutOf) -> list[tuple[str, str]]:
    """(user, server name) of the ready servers idle for their timeout or more (last activity, else
    start time); `users` as GET /users?state=ready returns them (state needs admin:server_state)."""
    idle = []
    for user in users:
        for name, server in (user.get("servers") or {}).items():
            timeout = timeout_of(server) if server.get("ready") else None
            if timeout is None:
                continue
            last = parse_time(server.get("last_activity")) or parse_time(server.get("started"))
            if last is not None and (now - last).total_seconds() >= timeout:
                idle.append((user["name"], name))
    return idle


class Hub:
    def __init__(self, api_url: str, token: str):
        self.api_url = api_url.rstrip("/")
        self.headers = {"Authorization": f"token {token}", "Accept": "application/jupyterhub-pagination+json"}
        self.http = AsyncHTTPClient()

    async def _call(self, method: str, path: str) -> dict | None:
        response = await self.http.fetch(HTTPRequest(self.api_url + path, method=method, headers=self.headers,
                                                     request_timeout=60))
        return json.loads(response.body) if response.body else None

    async def ready_users(self) -> list[dict]:
        users, offset = [], 0
        while True:  # pages, as the idle culler reads them
            page = await self._call("GET", f"/users?state=ready&offset={offset}")
            users += page["items"]
            following = (page.get("_pagination") or {}).get("next")
            if not following:
                return users
            offset = following["offset"]

    async def stop(self, user: str, server: str) -> None:
        path = f"/users/{quote(user, safe='')}/server" + (f"s/{quote(server, safe='')}" if server else "")
        await self._call("DELETE", path)


async def cull_once(hub: Hub, timeout_of: TimeoutOf) -> list[tuple[str, str]]:
    culled = []
    for user, server in idle_servers(await hub.ready_users(), datetime.now(timezone.utc), timeout_of):
        try:
            await hub.stop(user, server)
        except Exception as exc:  # noqa: BLE001 - one failed stop must not spare the others
            log.warning("could not stop %s's server %r: %s", user, server, exc)
            continue
        log.info("stopped %s's idle server %r", user, server)
        culled.append((user, server))
    return culled


async def run(timeout_of: TimeoutOf, every: float) -> None:
    hub = Hub(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    while True:
        try:
            await cull_once(hub, timeout_of)
        except Exception:  # noqa: BLE001 - the hub restarting is no reason to stop culling
            log.exception("cull pass failed")
        await asyncio.sleep(every)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--gpus", action="store_true", help="stop servers holding GPUs after --timeout")
    mode.add_argument("--profiles", action="store_true",
                      help="stop each server after its profile's idle_timeout, else after --timeout (0: never)")
    parser.add_argument("--timeout", type=int, required=True, help="idle seconds before a server is stopped")
    parser.add_argument("--cull-every", type=int, required=True, help="seconds between checks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s %(name)s] %(message)s")
    timeout_of = gpu_timeout(args.timeout) if args.gpus else profile_timeout(args.timeout)
    asyncio.run(run(timeout_of, args.cull_every))


if __name__ == "__main__":
    main()
