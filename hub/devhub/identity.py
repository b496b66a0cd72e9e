"""Identity pinning: a hub account belongs to one identity at the provider, not to a user name.

Many identity providers let people change the name the hub uses (OIDC's preferred_username, a GitHub
or GitLab login after a rename). Without pinning, someone who renames themselves to an admin's or a
departed colleague's name becomes that account: its admin rights, home volume and SSH host key.

At a user's first login the hub records the provider's stable subject for the name; a later login
under that name with another subject is refused. The pin lasts as long as the hub account: deleting
the user in the hub (admin page) frees the name for a new identity.

Stable subjects (SUBJECT_CLAIMS): GitHub and GitLab the numeric account id, OIDC and the demo the
`sub` claim.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from tornado import web

from . import audit, private_db

log = logging.getLogger("JupyterHub")

FILE_NAME = "devhub-identities.sqlite"
SUBJECT_CLAIMS = {"github": "id", "gitlab": "id", "oidc": "sub", "demo": "sub"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (
    username TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    subject  TEXT NOT NULL,
    pinned   TEXT NOT NULL
);
"""


class IdentityMismatch(Exception):
    """A login presented a user name that is pinned to another identity at the provider."""


class Pins:
    """username -> (provider, subject). Thread-safe; the file is created with mode 600 on first use."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = None

    def __deepcopy__(self, memo):  # traitlets copies config values; the hook must share one store
        return self

    def _db(self):
        if self._conn is None:
            self._conn = private_db.open_private(self.path, SCHEMA)
        return self._conn

    def check_and_pin(self, username: str, provider: str, subject: str, account_exists: bool) -> bool:
        """Pin `username` to (provider, subject) when it has no pin or no hub account (a new or
        deleted user); raise IdentityMismatch when it is pinned to another identity. True if pinned now."""
        with self._lock:
            db = self._db()
            row = db.execute("SELECT provider, subject FROM pins WHERE username = ?", (username,)).fetchone()
            if row is not None and account_exists:
                if (row["provider"], row["subject"]) == (provider, subject):
                    return False
                raise IdentityMismatch(
                    f"the account {username!r} belongs to another {row['provider']} identity than the one "
                    "you signed in with (was the name changed at the provider?). Ask an admin.")
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            db.execute("INSERT OR REPLACE INTO pins (username, provider, subject, pinned) VALUES (?, ?, ?, ?)",
                       (username, provider, subject, now))
            return True


def subject_of(auth_model: dict, provider: str) -> str:
    """The provider's stable subject in an OAuthenticator auth model ("" when absent)."""
    user_info = ((auth_model.get("auth_state") or {}).get("oauth_user")) or {}
    value = user_info.get(SUBJECT_CLAIMS[provider])
    return "" if value is None or isinstance(value, (dict, list)) else str(value)


def pinning_hook(provider: str, pins: Pins):
    """An Authenticator.post_auth_hook that enforces the pins (a refusal is a 403 page saying why)."""

    def post_auth_hook(authenticator, handler, auth_model: dict) -> dict:
        username = auth_model["name"]
        subject = subject_of(auth_model, provider)
        if not subject:
            claim = SUBJECT_CLAIMS[provider]
            log.warning("Refused login of %r: the %s provider sent no %r claim", username, provider, claim)
            raise web.HTTPError(403, f"Login refused: the identity provider sent no stable subject ({claim!r}).")
        try:
            if pins.check_and_pin(username, provider, subject, handler.find_user(username) is not None):
                log.info("Pinned user %r to %s subject %r", username, provider, subject)
        except IdentityMismatch as exc:
            log.warning("Refused login of %r: pinned to another %s subject than %r", username, provider, subject)
            audit.record("login_refused", user=username, source=handler.request.remote_ip,
                         reason=f"pinned to another {provider} identity")
            raise web.HTTPError(403, f"Login refused: {exc}") from None
        return auth_model

    return post_auth_hook
