"""Tells the hub a user is active over SSH, so the idle culler keeps her server, but only while
data flows: an open but silent connection (a forgotten VS Code window, an idle shell) must not keep
a server and its GPUs forever.

router.activity(user) when her first connection opens, then every `interval` seconds only if bytes
were relayed for her (either direction, any connection or channel) or another of her connections
opened since the previous report.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from .router import Router

log = logging.getLogger("devhub_gateway.activity")


class ActivityReporter:
    def __init__(self, router: Router, interval: float = 300, on_report=None,
                 wait: Callable[[float], Awaitable] = asyncio.sleep):
        self.router = router
        self.on_report = on_report
        self.interval = interval
        self._wait = wait  # the pause between rounds (tests step it by hand)
        self._live: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._active: set[str] = set()  # users with traffic (or a new connection) since their last report

    def opened(self, user: str) -> None:
        self._live[user] = self._live.get(user, 0) + 1
        if user in self._tasks:
            self._active.add(user)
        else:
            self._tasks[user] = asyncio.get_running_loop().create_task(self._loop(user))

    def traffic(self, user: str) -> None:
        """Bytes were relayed for `user` (called for every chunk: a set insertion)."""
        if user in self._live:
            self._active.add(user)

    def closed(self, user: str) -> None:
        left = self._live.get(user, 0) - 1
        if left > 0:
            self._live[user] = left
            return
        self._live.pop(user, None)
        self._active.discard(user)
        task = self._tasks.pop(user, None)
        if task:
            task.cancel()

    async def _loop(self, user: str) -> None:
        await self._report(user)
        while True:
            await self._wait(self.interval)
            if user in self._active:
                await self._report(user)

    async def _report(self, user: str) -> None:
        self._active.discard(user)  # before the call: traffic while the hub answers counts for the next round
        try:
            await self.router.activity(user)
            if self.on_report:
                self.on_report(user)
        except Exception:  # noqa: BLE001 - never let reporting break sessions
            log.exception("activity report for %r failed", user)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self._live.clear()
        self._active.clear()
