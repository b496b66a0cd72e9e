"""Audit log: one JSON object per line on stdout (event, user, source, session id, bytes, status)."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from typing import TextIO


class Audit:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.records: list[dict] = []  # the last few, for tests and debugging
        self.keep = 1000

    def __call__(self, event: str, **fields) -> dict:
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "event": event, **{k: v for k, v in fields.items() if v is not None}}
        try:
            self.stream.write(json.dumps(record, default=str) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass
        self.records.append(record)
        del self.records[:-self.keep]
        return record


def now() -> float:
    return time.time()
