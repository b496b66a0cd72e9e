"""Log lines that request input cannot forge.

User names, URL paths (tornado hands handlers their percent-decoded parts) and headers end up in the
hub's log; a "%0A" in one of them would start a line of the attacker's choosing, e.g. a fake
"User bob logged in". Every record's message is rendered once and its control characters escaped
(a newline becomes the two characters \\n); tracebacks, which are added by the formatter, keep theirs.
"""

from __future__ import annotations

import logging
import re

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def escape(text: str) -> str:
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def install() -> None:
    """Make every log record created in this process single-line (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "devhub_logsafe", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the handler's to report, as before
            return record
        if _CONTROL.search(message):
            record.msg, record.args = escape(message), None
        return record

    factory.devhub_logsafe = True
    logging.setLogRecordFactory(factory)
