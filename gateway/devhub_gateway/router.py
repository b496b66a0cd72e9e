"""Where a user's sshd is: the abstract Router and the StaticRouter (file or dict configuration)."""

from __future__ import annotations

import abc
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Mapping

from .target import Target

log = logging.getLogger("devhub_gateway.router")

Progress = Callable[[str], Awaitable[None] | None]
KeyCheck = Callable[[list[str]], bool]


@dataclass(frozen=True)
class Route:
    """The upstream sshd for one user: address, its host key (an OpenSSH public key line), login user."""

    host: str
    port: int
    host_key_line: str
    user: str = "jovyan"
    notice: str = ""  # shown when a shell opens (e.g. the home directory is above its soft limit)
    started: bool = False  # the server had to be started for this route (spawn-on-connect)


class RouteError(Exception):
    """The user's server cannot be reached or started; the message is shown to the user."""


class AccessRefused(Exception):
    """The hub refuses SSH to this user now (blocked, no longer allowed, ...): str() says why.

    `keys` are the user's keys: the reason is told only to a client that holds one of them."""

    def __init__(self, reason: str, keys: list[str]):
        super().__init__(reason)
        self.keys = keys


class Router(abc.ABC):
    @abc.abstractmethod
    async def authorized_keys(self, username: str) -> list[str]:
        """OpenSSH public key lines that may log in as `username` ([] for unknown users)."""

    # route, activity and last_stop take the SSH login ("alice", or "alice+exp1" for her named
    # server exp1) or its devhub_gateway.target.Target; the keys are always the hub user's.

    @abc.abstractmethod
    async def route(self, login: "str | Target", progress: Progress) -> Route:
        """The server's sshd, starting the server first when it is stopped.

        Calls ``progress(message)`` with human-readable lines while starting; raises RouteError.
        """

    async def activity(self, login: "str | Target") -> None:
        """Report that the login's server is active over SSH (keeps the idle culler away)."""

    async def last_stop(self, login: "str | Target") -> str | None:
        """Why `username`'s server stopped, asked when her sshd went away under a live session (waits
        while a stop is still under way): one phrase such as "idle for more than 1 h (IDLE_CULL_TIMEOUT)
        by jupyterhub-idle-culler", or None when there is no answer (the session gets a generic line)."""
        return None

    async def access_refusal(self, username: str, holds_key: KeyCheck) -> str | None:
        """Why a live connection of `username` must end now: `holds_key(lines)` says whether the key
        it logged in with is among `lines`. None while it may go on; RouteError when there is no
        answer (a hub that is restarting: callers let sessions go on)."""
        try:
            keys = await self.authorized_keys(username)
        except AccessRefused as exc:
            return str(exc)
        return None if holds_key(keys) else "the SSH key you logged in with was removed"

    async def close(self) -> None:
        """Release resources (HTTP sessions)."""


async def report(progress: Progress, message: str) -> None:
    """Call a progress callback that may be sync or async."""
    result = progress(message)
    if result is not None:
        await result


def _load_file(path: Path) -> dict:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)


class StaticRouter(Router):
    """Users, keys and routes from a fixed mapping, for tests and small deployments.

    Format (JSON or YAML), top level either ``{"users": {...}}`` or the users mapping itself::

        {"users": {"alice": {"keys": ["ssh-ed25519 AAAA... alice@laptop"],
                             "host": "devhub-alice", "port": 2222,
                             "host_key": "ssh-ed25519 AAAA...", "user": "jovyan"}}}

    ``user`` defaults to ``jovyan``, ``port`` to 2222. A user without ``host`` has no route
    (RouteError). A named server has an entry of its own under its login (``"alice+exp1"``). Keys may also be one string with one key per line. An optional ``last_stop``
    (text) is what a session is told when the user's sshd goes away under it.
    """

    def __init__(self, config: Mapping | str | Path):
        if isinstance(config, (str, Path)):
            config = _load_file(Path(config))
        if not isinstance(config, Mapping):
            raise ValueError("static router configuration must be a mapping of users")
        users = config.get("users", config)
        if not isinstance(users, Mapping):
            raise ValueError("static router configuration: 'users' must be a mapping")
        self.users: dict[str, dict] = {}
        for name, entry in users.items():
            if not isinstance(entry, Mapping):
                raise ValueError(f"static router configuration: user {name!r} must be a mapping")
            keys = entry.get("keys", [])
            if isinstance(keys, str):
                keys = keys.splitlines()
            self.users[str(name)] = {**entry, "keys": [k.strip() for k in keys if k.strip()]}

    async def authorized_keys(self, username: str) -> list[str]:
        return list(self.users.get(username, {}).get("keys", []))

    async def route(self, login: str | Target, progress: Progress) -> Route:
        login = Target.of(login).login
        entry = self.users.get(login)
        if not entry or not entry.get("host") or not entry.get("host_key"):
            raise RouteError(f"no server is configured for {login}")
        return Route(str(entry["host"]), int(entry.get("port", 2222)), str(entry["host_key"]).strip(),
                     str(entry.get("user", "jovyan")))

    async def last_stop(self, login: str | Target) -> str | None:
        return self.users.get(Target.of(login).login, {}).get("last_stop")

    async def activity(self, login: str | Target) -> None:
        log.debug("activity: %r", login)
