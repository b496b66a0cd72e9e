"""Users' SSH public keys, stored durably with the hub's data (the SSH gateway checks logins against them).

One SQLite file (DATA_DIR/devhub-ssh-keys.sqlite, mode 600, WAL journal) next to the hub's own
database. Each entry: an id, the owner, a name (1-64 printable characters, unique per owner), the
key line re-serialised by devhub.ssh_keys (never the text as given), its SHA256 fingerprint and the
time it was added. Keys are validated with devhub.ssh_keys.parse_public_key (ed25519, ECDSA,
RSA >= 3072 bits; no options, one key per entry); the same key twice for one owner and more than
`max_keys` keys per owner are refused. Every refusal is an InvalidKey whose message is meant for
the user.

Owners are strings chosen by the caller. The hub uses owner_of(user): the JupyterHub user's
database id and creation time, so the keys of a deleted user never apply to a new account that
reuses the name, and a renamed user keeps them. The user name is stored too, for operators.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import private_db
from .ssh_keys import InvalidKey, parse_public_key

FILE_NAME = "devhub-ssh-keys.sqlite"
MAX_NAME_LENGTH = 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS ssh_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner       TEXT NOT NULL,
    username    TEXT NOT NULL,
    name        TEXT NOT NULL,
    key         TEXT NOT NULL,
    blob        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created     TEXT NOT NULL,
    UNIQUE (owner, name),
    UNIQUE (owner, blob)
);
CREATE INDEX IF NOT EXISTS ssh_keys_username ON ssh_keys (username);
"""


@dataclass(frozen=True)
class KeyEntry:
    id: int
    name: str
    key: str  # the re-serialised authorized_keys line: "<type> <base64> [comment]"
    fingerprint: str
    created: str  # ISO 8601, UTC, e.g. 2026-01-31T12:00:00Z

    def to_json(self) -> dict:
        return asdict(self)


def owner_of(user) -> str:
    """The store's owner id of a JupyterHub user (orm.User or the hub's User wrapper)."""
    orm_user = getattr(user, "orm_user", user)
    created = orm_user.created.isoformat() if getattr(orm_user, "created", None) else ""
    return f"{orm_user.id}:{created}"


def validate_name(name: object) -> str:
    """The key's display name: 1-64 printable characters (surrounding spaces are dropped)."""
    if not isinstance(name, str):
        raise InvalidKey("the key name must be text")
    name = name.strip()
    if not name:
        raise InvalidKey("the key name is empty: give it a name such as 'laptop'")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidKey(f"the key name is too long ({len(name)} characters; at most {MAX_NAME_LENGTH})")
    if not name.isprintable():
        raise InvalidKey("the key name may only contain printable characters")
    return name


class KeyStore:
    """The key database. Thread-safe; opened (and created with mode 600) on first use."""

    def __init__(self, path: str | os.PathLike, max_keys: int = 10):
        self.path = Path(path)
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # traitlets deep-copies config values; every user of the store must share this one.
    def __deepcopy__(self, memo):
        return self

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r}, max_keys={self.max_keys})"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = private_db.open_private(self.path, SCHEMA)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @staticmethod
    def _entry(row: sqlite3.Row) -> KeyEntry:
        return KeyEntry(id=row["id"], name=row["name"], key=row["key"], fingerprint=row["fingerprint"], created=row["created"])

    def list(self, owner: str) -> list[KeyEntry]:
        """The owner's keys, oldest first."""
        with self._lock:
            rows = self._connect().execute(
                "SELECT * FROM ssh_keys WHERE owner = ? ORDER BY id", (owner,)
            ).fetchall()
        return [self._entry(r) for r in rows]

    def add(self, owner: str, username: str, name: object, key_text: object) -> KeyEntry:
        """Validate and store one key; raise InvalidKey (message for the user) when refused."""
        name = validate_name(name)
        if not isinstance(key_text, str):
            raise InvalidKey("the key must be text: one line such as 'ssh-ed25519 AAAA... me@laptop'")
        key = parse_public_key(key_text)
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        blob = f"{key.key_type} {key.blob}"
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute("SELECT name, blob FROM ssh_keys WHERE owner = ?", (owner,)).fetchall()
                for row in rows:
                    if row["blob"] == blob:
                        raise InvalidKey(f"this key is already added (as {row['name']!r}, {key.fingerprint})")
                    if row["name"] == name:
                        raise InvalidKey(f"a key named {name!r} already exists: choose another name")
                if len(rows) >= self.max_keys:
                    raise InvalidKey(f"at most {self.max_keys} keys per user: delete one before adding another")
                cur = conn.execute(
                    "INSERT INTO ssh_keys (owner, username, name, key, blob, fingerprint, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (owner, username, name, key.line, blob, key.fingerprint, created),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return KeyEntry(id=cur.lastrowid, name=name, key=key.line, fingerprint=key.fingerprint, created=created)

    def delete(self, owner: str, key_id: int | str) -> bool:
        """Delete one of the owner's keys; False when the owner has no key with that id."""
        try:
            key_id = int(key_id)
        except (TypeError, ValueError):
            return False
        with self._lock:
            cur = self._connect().execute("DELETE FROM ssh_keys WHERE owner = ? AND id = ?", (owner, key_id))
        return cur.rowcount == 1


    def delete_user(self, owner: str | None, username: str) -> int:
        """User deletion: delete the owner's keys and any others stored under the user name."""
        with self._lock:
            cur = self._connect().execute("DELETE FROM ssh_keys WHERE owner = ? OR username = ?", (owner, username))
        return cur.rowcount


_stores: dict[tuple[str, int], KeyStore] = {}
_stores_lock = threading.Lock()


def store_for(data_dir: str | os.PathLike, max_keys: int) -> KeyStore:
    """The process-wide store for DATA_DIR (one connection per file)."""
    path = str(Path(data_dir) / FILE_NAME)
    with _stores_lock:
        store = _stores.get((path, max_keys))
        if store is None:
            store = _stores[(path, max_keys)] = KeyStore(path, max_keys)
        return store
