"""The hub's audit log: one JSON object per line on stdout, in the SSH gateway's schema
({"ts", "event", "user", "source", ...}), for what an operator asks afterwards: who logged in or was
refused, whose server started and stopped (and whether the idle culler stopped it), who changed SSH
keys or created tokens, and what admins did to other users.

Events and where they come from:
- login (the authenticator's post_auth_hook), login_refused (a refused OAuth callback; with a reason
  when devhub refused it), logout: the login path and the request log.
- spawn, stop: the spawner, whatever asked (browser, API, SSH gateway).
- cull: the idle culler's stop request (request log), with the reason.
- key_add, key_delete: the SSH key API.
- token_create, admin (a change to another user's account or server, or to groups): the request log.
"""

from __future__ import annotations

import re
import sys
from urllib.parse import unquote

from devhub_env import audit_line

from jupyterhub.log import log_request as jupyterhub_log_request

from . import names
from .stops import STOPS, reason_for

CULLER = "jupyterhub-idle-culler"
GPU_CULLER = "devhub-gpu-culler"
PROFILE_CULLER = "devhub-profile-culler"
# Each culler's stop requests are culls with this reason; devhub.config puts the configured timeouts in.
CULL_REASONS = {CULLER: "idle (IDLE_CULL_TIMEOUT)", GPU_CULLER: "GPU server idle (IDLE_CULL_TIMEOUT_GPU)",
                PROFILE_CULLER: "idle (the profile's idle_timeout)"}
SERVICES_NOT_ADMINS = {CULLER, GPU_CULLER, PROFILE_CULLER, "ssh-gateway"}  # their requests are reported as cull/spawn/stop
_USER_API = re.compile(r"^/hub/api/users/(?P<name>[^/?]+)(?P<rest>/[^?]*)?")
_CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


def record(event: str, **fields) -> dict:
    """Write one audit line (fields that are None are left out) and return it."""
    line = audit_line.make(event, **fields)
    audit_line.write(sys.stdout, line)
    return line


def request_event(method: str, path: str, status: int, actor: str) -> tuple[str, dict] | None:
    """The audit event a finished hub request stands for, or None. `actor`: who made it ("" if nobody)."""
    if status >= 400:
        return ("login_refused", {"status": status}) if path.startswith("/hub/oauth_callback") else None
    if path.rstrip("/") == "/hub/logout" and actor:
        return "logout", {"user": actor}
    match = _USER_API.match(path)
    if method not in _CHANGES or not (match or path.startswith("/hub/api/groups")):
        return None
    target = unquote(match["name"]) if match else None
    rest = (match["rest"] or "") if match else ""
    if actor in CULL_REASONS and method == "DELETE" and rest.startswith("/server"):
        stopped = stopped_server(method, path, status)
        server = stopped[1] if stopped else ""
        return "cull", {"user": target, **({"server": server} if server else {}), "by": actor,
                        "reason": CULL_REASONS[actor]}
    if rest.startswith("/tokens") and method == "POST":
        return "token_create", {"user": target, "by": actor}
    if actor and actor != target and actor not in SERVICES_NOT_ADMINS:
        return "admin", {"user": target, "by": actor, "action": f"{method} {path}", "status": status}
    return None


def log_request(handler) -> None:
    """JupyterHub's request log line, then the audit line the request stands for, if any."""
    jupyterhub_log_request(handler)
    try:
        user = handler.current_user
    except Exception:  # noqa: BLE001 - as JupyterHub's own log_request: no user
        user = None
    actor = getattr(user, "name", "") or ""
    request = handler.request
    status = handler.get_status()
    found = request_event(request.method, request.path, status, actor)
    if found:
        event, fields = found
        record(event, **fields, source=request.remote_ip)
    stopped = stopped_server(request.method, request.path, status)
    if stopped:
        user, server = stopped
        STOPS.record(names.server_key(user, server), reason_for(actor, user, CULL_REASONS), actor)


_SERVER_PATH = re.compile(r"^/server/?$|^/servers/(?P<server>[^/]+)/?$")


def stopped_server(method: str, path: str, status: int) -> tuple[str, str] | None:
    """(user, server name; "" for the default) of the server a finished request stopped
    (DELETE /users/{name}/server or /users/{name}/servers/{server}), or None."""
    match = _USER_API.match(path)
    if method != "DELETE" or status >= 400 or not match:
        return None
    server = _SERVER_PATH.match(match["rest"] or "")
    if not server:
        return None
    return unquote(match["name"]), unquote(server["server"] or "")
