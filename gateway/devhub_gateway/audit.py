"""Audit log: one JSON object per line on stdout (event, user, source, session id, bytes, status).

Refusals go through :class:`RefusalLog`: the first refusal of a kind from an address is written at
once, repeats within the interval are counted and written as one ``refused_summary`` line, so a
flood of refused connections cannot drown the records that matter.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from devhub_env import audit_line


class Audit:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.records: list[dict] = []  # the last few, for tests and debugging
        self.keep = 1000

    def __call__(self, event: str, **fields) -> dict:
        record = audit_line.make(event, **fields)
        audit_line.write(self.stream, record)
        self.records.append(record)
        del self.records[:-self.keep]
        return record


OTHER_ADDRESSES = "other addresses"


class RefusalLog:
    """Refusals, at most one line per (reason, address) per `interval` seconds plus one summary
    line with the count of the repeats. Past `max_keys` distinct pairs in one interval, new
    addresses are counted together under "other addresses" (a flood from many addresses)."""

    def __init__(self, audit: Audit, interval: float = 60, max_keys: int = 256):
        self.audit = audit
        self.interval = interval
        self.max_keys = max_keys
        self._repeats: dict[tuple[str, str], int] = {}
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, reason: str, address: str, **fields) -> None:
        key = (reason, address)
        if key not in self._repeats and len(self._repeats) >= self.max_keys:
            key = (reason, OTHER_ADDRESSES)
        if key in self._repeats:
            self._repeats[key] += 1
            return
        self._repeats[key] = 0
        self.audit("refused", reason=reason, address=key[1], **fields)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._timer is not None:
            return
        try:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)
        except RuntimeError:  # no event loop (unit tests): flush() is called by hand
            pass

    def flush(self) -> None:
        """Write the counts of the repeats seen since the last flush and start a new interval."""
        self._timer = None
        repeats, self._repeats = self._repeats, {}
        for (reason, address), count in repeats.items():
            if count:
                self.audit("refused_summary", reason=reason, address=address, count=count,
                           interval=self.interval)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.flush()


def now() -> float:
    return time.time()
