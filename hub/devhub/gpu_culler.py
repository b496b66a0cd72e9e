"""The GPU idle culler: stops servers that hold GPUs after IDLE_CULL_TIMEOUT_GPU seconds without
activity, so a forgotten notebook or SSH window frees its GPUs long before IDLE_CULL_TIMEOUT.

A hub-managed service (devhub.services), like jupyterhub-idle-culler but only for servers whose
state says they hold GPUs (DevhubSpawner.get_state: "gpus"); it stops them through the REST API, so
the audit log records a cull and the SSH gateway tells open sessions why (devhub.stops).

    python -m devhub.gpu_culler --timeout=900 --cull-every=60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from datetime import datetime, timezone
from typing import Iterable
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

log = logging.getLogger("devhub.gpu_culler")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def idle_gpu_servers(users: Iterable[dict], now: datetime, timeout: float) -> list[tuple[str, str]]:
    """(user, server name) of the ready servers holding GPUs, idle for `timeout` seconds or more
    (last activity, else start time); `users` as GET /users?state=ready returns them."""
    idle = []
    for user in users:
        for name, server in (user.get("servers") or {}).items():
            if not server.get("ready") or not (server.get("state") or {}).get("gpus"):
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


async def cull_once(hub: Hub, timeout: float) -> list[tuple[str, str]]:
    culled = []
    for user, server in idle_gpu_servers(await hub.ready_users(), datetime.now(timezone.utc), timeout):
        try:
            await hub.stop(user, server)
        except Exception as exc:  # noqa: BLE001 - one failed stop must not spare the others
            log.warning("could not stop %s's GPU server %r: %s", user, server, exc)
            continue
        log.info("stopped %s's GPU server %r: idle for %d s or more", user, server, timeout)
        culled.append((user, server))
    return culled


async def run(timeout: float, every: float) -> None:
    hub = Hub(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    while True:
        try:
            await cull_once(hub, timeout)
        except Exception:  # noqa: BLE001 - the hub restarting is no reason to stop culling
            log.exception("GPU cull pass failed")
        await asyncio.sleep(every)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, required=True, help="idle seconds before a GPU server is stopped")
    parser.add_argument("--cull-every", type=int, required=True, help="seconds between checks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s %(name)s] %(message)s")
    asyncio.run(run(args.timeout, args.cull_every))


if __name__ == "__main__":
    main()
