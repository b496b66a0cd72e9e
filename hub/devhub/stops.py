"""Why each user's server last stopped, for the SSH gateway: a session whose server goes away is
told why in one line ("idle for more than 1 h ..."), not just cut.

Filled from finished stop requests (devhub.audit.log_request): the idle cullers', an admin's, the
user's own. Kept in memory: after a hub restart the gateway falls back to a generic line.
"""

from __future__ import annotations

from datetime import datetime, timezone


class StopLog:
    def __init__(self) -> None:
        self._last: dict[str, dict] = {}

    def record(self, user: str, reason: str, by: str) -> None:
        at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        self._last[user] = {"reason": reason, "by": by, "at": at}

    def last(self, user: str) -> dict | None:
        return self._last.get(user)

    def forget(self, user: str) -> None:
        """The server started again: its last stop is no longer news."""
        self._last.pop(user, None)


def reason_for(actor: str, user: str, cull_reasons: dict[str, str]) -> str:
    """What a stop requested by `actor` means to `user`."""
    if actor in cull_reasons:
        return cull_reasons[actor]
    if actor == user:
        return "stopped by you (from the hub)"
    return f"stopped by {actor}" if actor else "stopped"


STOPS = StopLog()  # one per hub process, like the audit log it is filled from
