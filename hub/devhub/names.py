"""Docker names for a user's container, home volume, network and archives.

escape() is injective: every character outside [a-z0-9] (including '-', '_', '.', upper case and
non-ASCII) becomes '-' plus the two lowercase hex digits of each of its UTF-8 bytes, so 'a-b' ->
'a-2db', 'a_b' -> 'a-5fb', 'a.b' -> 'a-2eb', 'Alice' -> '-41lice'. An escape always has exactly
two hex digits after '-', so the original can be read back and "--" never occurs in an escaped
string. (JupyterHub already lower-cases usernames, so 'Alice' reaches us as 'alice'; we do not rely
on that.) This is the same scheme as DockerSpawner's default escape (escapism with '-').

Names are kept to 63 characters (a DNS label: container names are also network aliases). When a
name would be longer, the escaped part is cut and '--' plus 16 hex digits of SHA-256 of the full
username is appended; '--' cannot occur in an untruncated name, so a truncated name never equals an
untruncated one, and two truncated names differ unless SHA-256 collides.
"""

from __future__ import annotations

import hashlib
import re
import string

SAFE = frozenset(string.ascii_lowercase + string.digits)
MAX_NAME = 63
HASH_LEN = 16
CONTAINER_PREFIX = "devhub-user-"
ARCHIVE_PREFIX = "devhub-archive-"
DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def escape(username: str) -> str:
    """Reversible escape of `username` into [a-z0-9-]."""
    return "".join(ch if ch in SAFE else "".join(f"-{b:02x}" for b in ch.encode("utf-8")) for ch in username)


def unescape(escaped: str) -> str:
    """Inverse of escape() (for tools and tests)."""
    out = bytearray()
    i = 0
    while i < len(escaped):
        if escaped[i] == "-":
            out.append(int(escaped[i + 1 : i + 3], 16))
            i += 3
        else:
            out += escaped[i].encode()
            i += 1
    return out.decode("utf-8")


def docker_name(prefix: str, username: str, max_len: int = MAX_NAME) -> str:
    """prefix + escape(username), shortened with a hash of the username when too long."""
    escaped = escape(username)
    name = prefix + escaped
    if len(name) > max_len:
        digest = hashlib.sha256(username.encode("utf-8")).hexdigest()[:HASH_LEN]
        keep = max(0, max_len - len(prefix) - 2 - HASH_LEN)
        head = escaped[:keep]
        # Do not end on a partial "-xx" escape (cosmetic: the hash makes the name unique anyway).
        cut = head.rfind("-")
        if cut != -1 and cut > len(head) - 3:
            head = head[:cut]
        name = f"{prefix}{head}--{digest}"
    if not DOCKER_NAME.fullmatch(name):
        # Only possible with a prefix that does not start with [a-zA-Z0-9] (settings refuses those).
        raise ValueError(f"cannot build a Docker name from prefix {prefix!r}")
    return name


def container_name(username: str, prefix: str = CONTAINER_PREFIX) -> str:
    return docker_name(prefix, username)


def volume_name(prefix: str, username: str) -> str:
    return docker_name(prefix, username)


def network_name(prefix: str, username: str) -> str:
    return docker_name(prefix, username)


def archive_volume_name(username: str, timestamp: str) -> str:
    """devhub-archive-<escaped>-<timestamp>; the timestamp ([0-9TZ]) is always kept whole."""
    return docker_name(ARCHIVE_PREFIX, username, MAX_NAME - 1 - len(timestamp)) + "-" + timestamp
