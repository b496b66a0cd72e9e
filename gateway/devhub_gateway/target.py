"""Which of a user's servers an SSH login is for: ``alice`` is alice's default server,
``alice+exp1`` her named server ``exp1`` (``ssh -p 2222 alice+exp1@host``, ``scp -P 2222 f
alice+exp1@host:``, VS Code ``User alice+exp1``).

'+' separates them because it is the one common character that no tool gives a meaning there:
'/' and ':' would break the ``user@host:path`` syntax of scp and rsync, '@' breaks ``user@host``,
and '.', '-' and '_' occur in user names. The hub refuses logins under user names with '+'
(devhub.auth), so the split at the first '+' is unambiguous. Server names follow the hub's rule
(devhub.names.SERVER_NAME): the gateway checks it before asking the hub anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEPARATOR = "+"
SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SERVER_NAME_RULE = "1-32 characters of a-z, 0-9 and '-', starting with a letter or digit"


@dataclass(frozen=True)
class Target:
    user: str  # the hub user, whose keys authenticate the login
    server: str = ""  # "" is the default server
    separated: bool = False  # the login named a server ("alice+..."), even an empty or invalid one

    @classmethod
    def of(cls, login: "str | Target") -> "Target":
        """The target of an SSH login name (a Target passes through)."""
        if isinstance(login, Target):
            return login
        user, separator, server = login.partition(SEPARATOR)
        return cls(user, server, bool(separator))

    @property
    def login(self) -> str:
        """The SSH user name that selects this server."""
        return f"{self.user}{SEPARATOR}{self.server}" if self.separated else self.user

    @property
    def problem(self) -> str | None:
        """Why no server can have this name (told to the client once it has logged in), or None."""
        if not self.separated or SERVER_NAME.fullmatch(self.server):
            return None
        return f"invalid server name {self.server!r} after '{SEPARATOR}' in the SSH user name: use {SERVER_NAME_RULE}"

    @property
    def your_server(self) -> str:
        """How messages to the client name the server."""
        return f"your server {self.server}" if self.server else "your server"

    def audit_fields(self) -> dict[str, str]:
        return {"user": self.user, **({"server": self.server} if self.server else {})}
