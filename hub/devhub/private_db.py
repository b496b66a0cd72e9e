"""SQLite files of the hub's own (SSH keys, identity pins): mode 600 from the first byte, WAL journal."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path


def open_private(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating it with mode 600) the database at `path` and apply `schema` (idempotent DDL)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Create the file ourselves so it is never, even briefly, readable by others; SQLite gives its
    # -wal/-shm files the database file's mode.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RuntimeError(f"{path} is not a regular file")
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(schema)
    return conn
