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

A named server's objects (container, network, host name) add "-s-" and its escaped name:
devhub-user-alice-s-exp1. "-s" never occurs in an escape (an escape's '-' is followed by two hex
digits) and server names start with [a-z0-9] (SERVER_NAME), so (user, server) can be read back and
never meets "--". The default server (name "") keeps the user's plain names. The home volume is the
user's, shared by all of their servers.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import string
from dataclasses import dataclass

SAFE = frozenset(string.ascii_lowercase + string.digits)
MAX_NAME = 63
HASH_LEN = 16
CONTAINER_PREFIX = "devhub-user-"  # USER_NETWORK_PREFIX's default
HOME_PREFIX = "devhub-home-"  # USER_VOLUME_PREFIX's default
ARCHIVE_PREFIX = "devhub-archive-"
DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
# Named servers' names: short, lower case, usable in an SSH user name (alice+exp1), a URL and a DNS label.
SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SERVER_NAME_RULE = "1-32 characters of a-z, 0-9 and '-', starting with a letter or digit"
SERVER_SEPARATOR = "-s-"
# In SSH user names: alice+exp1 is alice's server exp1 ('/' and ':' would break scp's host:path).
SSH_SERVER_SEPARATOR = "+"


class InvalidServerName(ValueError):
    """A named server's name breaks SERVER_NAME_RULE; the message is shown to the user."""


def check_server_name(server: str) -> str:
    """`server` if it is "" (the default server) or a valid named server's name, else InvalidServerName."""
    if server and not SERVER_NAME.fullmatch(server):
        raise InvalidServerName(f"invalid server name {server!r}: use {SERVER_NAME_RULE}")
    return server


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


def docker_name(prefix: str, username: str, max_len: int = MAX_NAME, *, server: str = "") -> str:
    """prefix + escape(username) (+ "-s-" + escape(server) for a named server), shortened with a hash
    of the username (and server) when too long."""
    escaped = escape(username)
    if check_server_name(server):
        escaped += SERVER_SEPARATOR + escape(server)
    name = prefix + escaped
    if len(name) > max_len:
        # '/' cannot occur in user names (JupyterHub refuses it): user/server is unambiguous.
        whole = f"{username}/{server}" if server else username
        digest = hashlib.sha256(whole.encode("utf-8")).hexdigest()[:HASH_LEN]
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


@dataclass(frozen=True, kw_only=True)
class ServerObjects:
    """Every Docker name made for one user's server, and for the user's home: the one place they are
    made (the spawner, `make status`/`make down` through the CLI below, and the tests use it).

    network_prefix (USER_NETWORK_PREFIX) starts the container's and the network's names, so one
    setting names a deployment's per-server objects; volume_prefix (USER_VOLUME_PREFIX) the home's."""

    user: str
    server: str = ""  # "" is the default server
    network_prefix: str = CONTAINER_PREFIX
    volume_prefix: str = HOME_PREFIX

    @property
    def container(self) -> str:
        return docker_name(self.network_prefix, self.user, server=self.server)

    @property
    def network(self) -> str:
        return docker_name(self.network_prefix, self.user, server=self.server)

    @property
    def hostname(self) -> str:
        """The container's host name (shells, logs), e.g. devhub-alice or devhub-alice-s-exp1."""
        return docker_name("devhub-", self.user, server=self.server)

    @property
    def home(self) -> str:
        """The user's home volume: one per person, mounted by all of their servers."""
        return docker_name(self.volume_prefix, self.user)

    @property
    def archiver(self) -> str:
        """The helper container that copies the home into an archive when the user is deleted."""
        return docker_name("devhub-archiver-", self.user)

    def archive(self, timestamp: str) -> str:
        return archive_volume_name(self.user, timestamp)

    @property
    def key(self) -> str:
        return server_key(self.user, self.server)


def named_servers(user) -> list[str]:
    """A JupyterHub user's named servers (created, running or not), sorted."""
    return sorted(name for name in user.orm_spawners if name)


def server_key(username: str, server: str = "") -> str:
    """One string per server, for in-memory bookkeeping (GPU claims, stop reasons): "alice" for the
    default server, "alice/exp1" for a named one ('/' cannot occur in user names)."""
    return f"{username}/{server}" if server else username


def archive_volume_name(username: str, timestamp: str) -> str:
    """devhub-archive-<escaped>-<timestamp>; the timestamp ([0-9TZ]) is always kept whole."""
    return docker_name(ARCHIVE_PREFIX, username, MAX_NAME - 1 - len(timestamp)) + "-" + timestamp


def main(argv: list[str] | None = None) -> None:
    """python -m devhub.names --user alice [--server exp1] [--network-prefix P] [--volume-prefix P] WHAT:
    print one of the names (for shell scripts, which must not rebuild them without the escaping)."""
    parser = argparse.ArgumentParser(description="Print the Docker name devhub gives a user's object.")
    parser.add_argument("what", choices=["container", "network", "hostname", "home", "archiver"])
    parser.add_argument("--user", required=True)
    parser.add_argument("--server", default="")
    parser.add_argument("--network-prefix", default=CONTAINER_PREFIX)
    parser.add_argument("--volume-prefix", default=HOME_PREFIX)
    args = parser.parse_args(argv)
    objects = ServerObjects(user=args.user, server=args.server, network_prefix=args.network_prefix,
                            volume_prefix=args.volume_prefix)
    try:
        print(getattr(objects, args.what))
    except ValueError as exc:
        parser.exit(2, f"devhub.names: {exc}\n")


if __name__ == "__main__":
    main()
