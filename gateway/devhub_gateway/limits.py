"""Abuse limits: failed-auth rate limits per source address and per user, capped slots (pre-auth
connections per address, sessions and channels per user), constant timing for failed
authentication (unknown users and wrong keys look the same), and the process's open-files limit.
"""

from __future__ import annotations

import asyncio
import random
import resource
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

    def blocked_count(self) -> int:
        """How many keys are blocked now (the metrics' devhub_gateway_blocked_addresses)."""
        now = self.clock()
        return sum(1 for bucket in self._buckets.values() if bucket.blocked_until > now)

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
class Slots:
    """Live holders per key (address, user) under a cap per key and, optionally, a cap on all keys.

    Used for pre-auth connections per address, authenticated connections per user and open
    channels per user: what a flood can hold at once is then bounded, whatever it sends.
    """

    cap: int
    total_cap: int | None = None
    live: dict[str, int] = field(default_factory=dict)
    total: int = 0

    def refusal(self, key: str) -> str | None:
        """Which cap a new slot for `key` would exceed: "total", "key", or None when one is free."""
        if self.total_cap is not None and self.total >= self.total_cap:
            return "total"
        if self.live.get(key, 0) >= self.cap:
            return "key"
        return None

    def try_acquire(self, key: str) -> bool:
        if self.refusal(key):
            return False
        self.live[key] = self.live.get(key, 0) + 1
        self.total += 1
        return True

    def release(self, key: str) -> int:
        """Give one slot of `key` back; returns how many `key` still holds."""
        held = self.live.get(key, 0)
        if held <= 0:
            return 0
        self.total -= 1
        if held == 1:
            del self.live[key]  # no entry per address ever seen: a flood of addresses leaves nothing behind
            return 0
        self.live[key] = held - 1
        return held - 1


async def pad_failure(started: float, floor: float) -> None:
    """Sleep until `floor` seconds (plus a little jitter) after `started`: a refused key answers
    after the same delay whether the user exists, has other keys or the hub was slow to say no."""
    remaining = floor + random.uniform(0, floor / 10) - (time.monotonic() - started)
    if remaining > 0:
        await asyncio.sleep(remaining)


def raise_open_files_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (every connection holds one or two descriptors:
    the client's socket and, once logged in, the upstream one). Returns the (soft, hard) in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard
