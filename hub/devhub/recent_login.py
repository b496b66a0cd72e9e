"""With the opt-in SERVER_ROUTING=path: adding or deleting SSH keys and creating API tokens from a
browser need a recent login.

On one shared origin, a page that a user serves from their own server runs as whoever opens it,
and can read that person's XSRF token. The two things it could then do that outlive the visit are
adding an SSH key and minting an API token; from a browser session both need a login in the last
RECENT_LOGIN_SECONDS (10 minutes), else a 403 that says to log in again. Requests with an API token
(scripts) are not affected. With per-user origins (the default) none of this is needed or applied.

The login time is a signed cookie of its own, set at every login (JupyterHub keeps its login cookie
when the same user logs in again, so its age says nothing).
"""

from __future__ import annotations

from jupyterhub import apihandlers
from jupyterhub.apihandlers.users import UserTokenListAPIHandler
from tornado import web

COOKIE = "devhub-login-time"


def mark_login(handler) -> None:
    """At a successful login (post_auth_hook): remember when, for this browser."""
    handler.set_secure_cookie(COOKIE, "1", path=handler.hub.base_url, httponly=True, samesite="Lax",
                              secure=handler.request.protocol == "https", expires_days=None)


def require(handler, max_age: int, action: str) -> None:
    """403 unless the request carries an API token or a login cookie younger than `max_age` seconds."""
    if not max_age or handler.get_auth_token():
        return
    if handler.get_secure_cookie(COOKIE, max_age_days=max_age / 86400) is None:
        raise web.HTTPError(
            403, f"Log in again to {action}: on this hub (SERVER_ROUTING=path) that needs a login in the last "
                 f"{max(1, max_age // 60)} minutes. Log out and in at {handler.hub.base_url}login.")


class RecentLoginTokenListAPIHandler(UserTokenListAPIHandler):
    """JupyterHub's token list/creation API; creating a token from a browser needs a recent login."""

    max_age = 600

    async def post(self, user_name):
        require(self, self.max_age, "create an API token")
        return await super().post(user_name)


def apply(max_age: int) -> None:
    """Put the token handler in JupyterHub's API routes (extra handlers come after its own)."""
    RecentLoginTokenListAPIHandler.max_age = max_age
    routes = apihandlers.default_handlers
    for i, (pattern, handler, *rest) in enumerate(routes):
        if isinstance(handler, type) and issubclass(handler, UserTokenListAPIHandler):  # ours, once applied
            routes[i] = (pattern, RecentLoginTokenListAPIHandler, *rest)
            return
    raise RuntimeError("JupyterHub's token API route was not found: cannot require a recent login for tokens")
