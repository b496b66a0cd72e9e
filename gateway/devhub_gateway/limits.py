"""Abuse limits: failed-auth rate limits per source address and per user, session caps, and
constant timing for failed authentication (unknown users and wrong keys look the same).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float
    blocked_until: float = 0.0


class FailureLimiter:
    """Token bucket of failures per key (address or user).

    Each key may fail `burst` times; tokens refill at `burst / window` per second. An empty bucket
    blocks the key for `block` seconds (new connections from a blocked address are refused).
    """

    def __init__(self, burst: int = 10, window: float = 60.0, block: float = 60.0, clock=time.monotonic):
        self.burst, self.rate, self.block = burst, burst / window, block
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, key: str) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def blocked(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        return bool(bucket and bucket.blocked_until > self.clock())

    def fail(self, key: str) -> bool:
        """Record one failure; True if the key is now blocked."""
        bucket = self._bucket(key)
        bucket.tokens -= 1
        if bucket.tokens < 1 and bucket.blocked_until <= self.clock():
            bucket.blocked_until = self.clock() + self.block
        self._gc()
        return self.blocked(key)

    def _gc(self) -> None:
        if len(self._buckets) > 10000:
            now = self.clock()
            for key in [k for k, b in self._buckets.items()
                        if b.blocked_until < now and b.tokens + (now - b.updated) * self.rate >= self.burst]:
                del self._buckets[key]


@dataclass
class SessionCounter:
    """Live authenticated connections per user, with a cap."""

    cap: int = 10
    live: dict[str, int] = field(default_factory=dict)

    def try_acquire(self, user: str) -> bool:
        if self.live.get(user, 0) >= self.cap:
            return False
        self.live[user] = self.live.get(user, 0) + 1
        return True

    def release(self, user: str) -> int:
        left = self.live.get(user, 0) - 1
        if left <= 0:
            self.live.pop(user, None)
            return 0
        self.live[user] = left
        return left


async def pad_failure(started: float, floor: float) -> None:
    """Sleep until `floor` seconds (plus a little jitter) after `started`: a refused key answers
    after the same delay whether the user exists, has other keys or the hub was slow to say no."""
    remaining = floor + random.uniform(0, floor / 10) - (time.monotonic() - started)
    if remaining > 0:
        await asyncio.sleep(remaining)
