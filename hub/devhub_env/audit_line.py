"""One audit record in the schema the hub's and the SSH gateway's audit logs share: a JSON object
per line, {"ts": UTC with milliseconds and "Z", "event": ..., then the fields that are not None}."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TextIO


def make(event: str, **fields) -> dict:
    return {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": event, **{k: v for k, v in fields.items() if v is not None}}


def write(stream: TextIO, record: dict) -> None:
    """One line to `stream`; a closed or broken stream loses the line, never the caller's work."""
    try:
        stream.write(json.dumps(record, default=str) + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass
