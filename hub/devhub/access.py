"""Whether a user may use SSH now, decided by the same authenticator as web logins.

The hub checks the authenticator only when someone logs in on the web; SSH never passes through a
login. So the SSH key lookup and route APIs (which the gateway calls for every connection and, for
live connections, periodically) ask here: a user who is blocked, no longer allowed (removed from
ALLOWED_*, or from the allowed org or group, as far as the stored login says), or who never logged
in on the web (an admin-created account: no OAuth tokens to start a server with) is refused.
"""

from __future__ import annotations

from jupyterhub.utils import maybe_future


async def ssh_refusal(authenticator, user) -> str | None:
    """Why the hub user `user` may not use SSH now (a sentence for the SSH client), or None."""
    name = user.name
    auth_state = await user.get_auth_state() if authenticator.enable_auth_state else None
    model = {"name": name, "admin": bool(user.admin), "auth_state": auth_state or {}}
    if not await maybe_future(authenticator.check_blocked_users(name, model)):
        return f"{name} is blocked on this hub"
    if authenticator.enable_auth_state and not auth_state:
        return f"{name} has not logged in on the web yet"
    if not await maybe_future(authenticator.check_allowed(name, model)):
        return f"{name} is no longer allowed on this hub"
    return None
