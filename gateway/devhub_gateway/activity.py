"""Tells the hub a user is active while she has live SSH connections (the idle culler then keeps
her container): router.activity(user) at the first connection and every `interval` seconds."""

from __future__ import annotations

import asyncio
import logging

from .router import Router

log = logging.getLogger("devhub_gateway.activity")


class ActivityReporter:
    def __init__(self, router: Router, interval: float = 300, on_report=None):
        self.router = router
        self.on_report = on_report
        self.interval = interval
        self._live: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    def opened(self, user: str) -> None:
        self._live[user] = self._live.get(user, 0) + 1
        if user not in self._tasks:
            self._tasks[user] = asyncio.get_running_loop().create_task(self._loop(user))

    def closed(self, user: str) -> None:
        left = self._live.get(user, 0) - 1
        if left > 0:
            self._live[user] = left
            return
        self._live.pop(user, None)
        task = self._tasks.pop(user, None)
        if task:
            task.cancel()

    async def _loop(self, user: str) -> None:
        while True:
            try:
                await self.router.activity(user)
                if self.on_report:
                    self.on_report(user)
            except Exception:  # noqa: BLE001 - never let reporting break sessions
                log.exception("activity report for %r failed", user)
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self._live.clear()
