"""The hub side of the SSH gateway: a REST API for users' SSH keys and routes, and the SSH keys page.

REST API (JupyterHub token or cookie auth; JSON errors {"status": N, "message": "..."}):

    GET    /hub/api/devhub/ssh/users/{name}/keys       200 {"keys": [line, ...], "entries": [entry, ...]}
    POST   /hub/api/devhub/ssh/users/{name}/keys       {"name": "...", "key": "ssh-ed25519 ..."}
                                                       201 entry | 400 with the reason
    DELETE /hub/api/devhub/ssh/users/{name}/keys/{id}  204 | 404 unknown id
    GET    /hub/api/devhub/ssh/users/{name}/route      (the default server; a named one's:
                                                        /hub/api/devhub/ssh/users/{name}/servers/{server}/route,
                                                        404 {"unknown_server": true, "message"} if never created)
                                                       200 {"host", "port", "host_key", "user", "container",
                                                            "notice"} (notice: disk soft limit, for shells)
                                                       409 server not running, or its host key not yet known;
                                                           not running: {"stop_pending": bool, "last_stop":
                                                           {"reason", "by", "at"}} (devhub.stops; when known)

To the gateway, keys (GET) and route answer 403 {"message": "SSH refused: <why>", "ssh_refused": "<why>"} for a user the
authenticator refuses now (devhub.access): blocked, no longer allowed, or never logged in on the web
(the keys' 403 also lists "keys", so the gateway can tell the reason to their holder only).

    entry = {"id": int, "name": str, "key": str, "fingerprint": "SHA256:...", "created": "...Z"}

Who may do what (custom scopes, devhub.scopes):
- custom:ssh-keys:read    list a user's keys          (the SSH gateway: all users)
- custom:ssh-keys:manage  also add and delete keys    (every user for themself, via the `user` role)
- custom:ssh-route:read   where a user's sshd is      (the SSH gateway only)
- admin:users on a user   read and manage that user's keys (admins)
A token without these scopes, such as the one inside a user's container, cannot touch the keys.
Requests without the needed scope get 403 whether or not the user exists; 404 for an unknown
user is only told to callers that may see every user.

Page: GET /hub/ssh-keys (linked from the home page): list, add, delete keys, plus a ready-to-paste
~/.ssh/config block (one Host per server, named ones as alice+exp1) and an ssh command per server,
and a port-forwarding example.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlsplit

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import has_scope
from tornado import web

from . import access, audit, names, recent_login
from .scopes import CUSTOM_SCOPES, SCOPE_KEYS_MANAGE, SCOPE_KEYS_READ, SCOPE_ROUTE
from .disk import HomeUsage
from .settings import Settings
from .ssh_keys import InvalidKey
from .ssh_keystore import KeyStore, owner_of, store_for
from .stops import STOPS

TEMPLATES = Path(__file__).parent / "templates"

ADMIN_SCOPE = "admin:users"

API_PREFIX = "/api/devhub/ssh/users"


class _SshMixin:
    store: KeyStore
    devhub_settings: Settings

    def initialize(self, store: KeyStore, devhub_settings: Settings, usage: HomeUsage | None = None):
        self.store = store
        self.devhub_settings = devhub_settings
        self.usage = usage

    def _may(self, scope: str, user_name: str) -> bool:
        for s in (scope, ADMIN_SCOPE):
            if has_scope(f"{s}!user={user_name}", self.parsed_scopes, db=self.db):
                return True
        return False

    def _sees_everyone(self, scope: str) -> bool:
        return has_scope(scope, self.parsed_scopes, db=self.db) or has_scope(ADMIN_SCOPE, self.parsed_scopes, db=self.db)

    def authorize(self, scope: str, user_name: str):
        """The user `user_name`, when the caller holds `scope` (or admin:users) for them; else 403/404."""
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if not self._may(scope, user_name):
            self.log.warning("%s may not use %s for SSH user %s", self.current_user.name, scope, user_name)
            raise web.HTTPError(403, "Not allowed to %s of user %s", _ACTIONS[scope], user_name)
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, "No such user: %s", user_name)
        return user

    def require_recent_login(self) -> None:
        """With the shared origin of SERVER_ROUTING=path, key changes from a browser need a recent login."""
        if not self.devhub_settings.subdomains:
            recent_login.require(self, self.devhub_settings.recent_login_seconds, "change SSH keys")

    async def ssh_refusal(self, user) -> str | None:
        """Why the gateway must refuse `user` now (devhub.access), or None; the user themself and
        admins are never refused here: they still see and manage the keys."""
        if self.current_user.name == user.name and getattr(self.current_user, "kind", "user") == "user":
            return None
        if has_scope(f"{ADMIN_SCOPE}!user={user.name}", self.parsed_scopes, db=self.db):
            return None
        refusal = await access.ssh_refusal(self.authenticator, user)
        if refusal:
            self.log.warning("SSH refused for %r: %s", user.name, refusal)
        return refusal


_ACTIONS = {
    SCOPE_KEYS_READ: "read the SSH keys",
    SCOPE_KEYS_MANAGE: "change the SSH keys",
    SCOPE_ROUTE: "look up the SSH route",
}


def _bad_request(message: str) -> web.HTTPError:
    return web.HTTPError(400, "%s", message)


class SshKeysAPIHandler(_SshMixin, APIHandler):
    async def get(self, user_name):
        user = self.authorize(SCOPE_KEYS_READ, user_name)
        entries = self.store.list(owner_of(user))
        body = {"keys": [e.key for e in entries], "entries": [e.to_json() for e in entries]}
        refusal = await self.ssh_refusal(user)
        if refusal:
            # The keys come along so the gateway tells the reason only to a client holding one of them.
            self.set_status(403)
            body = {"status": 403, "message": f"SSH refused: {refusal}", "ssh_refused": refusal, "keys": body["keys"]}
        self.write(json.dumps(body))

    def post(self, user_name):
        user = self.authorize(SCOPE_KEYS_MANAGE, user_name)
        self.require_recent_login()
        body = self.get_json_body()  # 400 'Invalid JSON in body of request'
        if not isinstance(body, dict):
            raise _bad_request('expected a JSON object: {"name": "laptop", "key": "ssh-ed25519 AAAA... me@laptop"}')
        for field in ("name", "key"):
            if field not in body:
                raise _bad_request(f"the field {field!r} is missing")
        unknown = sorted(set(body) - {"name", "key"})
        if unknown:
            raise _bad_request(f"unknown fields {unknown}; send only 'name' and 'key'")
        try:
            entry = self.store.add(owner_of(user), user.name, body["name"], body["key"])
        except InvalidKey as exc:
            raise _bad_request(str(exc)) from None
        self.log.info("SSH key %s (%s) added for %s by %s", entry.name, entry.fingerprint, user.name, self.current_user.name)
        audit.record("key_add", user=user.name, by=self.current_user.name, key=entry.fingerprint, name=entry.name,
                     source=self.request.remote_ip)
        self.set_status(201)
        self.write(json.dumps(entry.to_json()))


class SshKeyAPIHandler(_SshMixin, APIHandler):
    def delete(self, user_name, key_id):
        user = self.authorize(SCOPE_KEYS_MANAGE, user_name)
        self.require_recent_login()
        if not self.store.delete(owner_of(user), key_id):
            raise web.HTTPError(404, "No SSH key %s for user %s", key_id, user_name)
        self.log.info("SSH key %s of %s deleted by %s", key_id, user.name, self.current_user.name)
        audit.record("key_delete", user=user.name, by=self.current_user.name, key_id=key_id, source=self.request.remote_ip)
        self.set_status(204)
        self.finish()


class SshRouteAPIHandler(_SshMixin, APIHandler):
    async def get(self, user_name, server_name=""):
        user = self.authorize(SCOPE_ROUTE, user_name)
        refusal = await self.ssh_refusal(user)
        if refusal:
            self.set_status(403)
            self.write(json.dumps({"status": 403, "message": f"SSH refused: {refusal}", "ssh_refused": refusal}))
            return
        if server_name:
            self.require_named_server(user, server_name)
        spawner = user.spawners.get(server_name)  # dict.get: a stopped server is not instantiated
        route = await spawner.ssh_route() if spawner is not None and spawner.ready else None
        if route is None:
            self.not_running(names.server_key(user.name, server_name), spawner)
            return
        if not route.get("host_key"):
            # Just started: sshd has not written its host key yet. 409 like "not running", so a
            # gateway keeps polling as it does while a server starts.
            error = web.HTTPError(409, "server starting: its SSH host key is not available yet")
            error.headers = {"Retry-After": "1"}  # APIHandler.write_error sends these
            raise error
        if self.usage is not None:
            self.usage.ensure_running()
            route = {**route, "notice": self.usage.notice(user.name)}  # shown when an SSH shell opens
        if spawner.orm_spawner is not None and spawner.orm_spawner.state != spawner.get_state():
            spawner.orm_spawner.state = spawner.get_state()  # the host key, for after a hub restart
            self.db.commit()
        self.write(json.dumps(route))


    def require_named_server(self, user, server_name: str) -> None:
        """400 for a name no server can have, 404 (with "unknown_server") for one the user has not
        created: the gateway tells the SSH client, and never starts what the user did not make."""
        try:
            names.check_server_name(server_name)
        except names.InvalidServerName as exc:
            raise _bad_request(str(exc)) from None
        if server_name in user.orm_spawners:
            return
        servers = ", ".join(["default", *names.named_servers(user)])
        message = (f"{user.name} has no server named {server_name!r} ({user.name}'s servers: {servers}); "
                   "create it on the hub's home page first")
        self.finish_json(404, {"message": message, "unknown_server": True})
        raise web.Finish()

    def not_running(self, server_key: str, spawner) -> None:
        """409 with what the gateway tells a session whose server went away: whether a stop is
        still under way, and why the server last stopped (devhub.stops)."""
        body = {"message": "server not running", "stop_pending": bool(spawner is not None and spawner.pending == "stop")}
        last = STOPS.last(server_key)
        if last:
            body["last_stop"] = last
        self.finish_json(409, body)

    def finish_json(self, status: int, body: dict) -> None:
        """An error answer with fields of its own for the gateway, in JupyterHub's error shape."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status, **body}))


class SshKeysPageHandler(_SshMixin, BaseHandler):
    @web.authenticated
    async def get(self):
        user = self.current_user
        s = self.devhub_settings
        host = urlsplit(s.public_url).hostname or "localhost"
        html = await self.render_template(
            "ssh-keys.html",
            entries=self.store.list(owner_of(user)),
            ssh_servers=ssh_servers(user),
            keys_url=self.hub.base_url + API_PREFIX.lstrip("/") + "/" + quote(user.name, safe="") + "/keys",
            ssh_host=host,
            ssh_port=s.ssh_port,
            max_keys=self.store.max_keys,
        )
        self.finish(html)


def ssh_servers(user) -> list[dict]:
    """The user's servers as the keys page offers them: an ~/.ssh/config Host alias (devhub,
    devhub-exp1), the SSH login (alice, alice+exp1: devhub_gateway.target) and a label."""
    return [{"alias": "devhub", "login": user.name, "label": "default server"}] + [
        {"alias": f"devhub-{name}", "login": f"{user.name}{names.SSH_SERVER_SEPARATOR}{name}", "label": f"server {name}"}
        for name in names.named_servers(user)]


def handlers(store: KeyStore, settings: Settings, usage: HomeUsage | None = None) -> list[tuple]:
    kwargs = {"store": store, "devhub_settings": settings, "usage": usage}
    return [
        (API_PREFIX + r"/([^/]+)/keys", SshKeysAPIHandler, kwargs),
        (API_PREFIX + r"/([^/]+)/keys/([^/]+)", SshKeyAPIHandler, kwargs),
        (API_PREFIX + r"/([^/]+)/route", SshRouteAPIHandler, kwargs),
        (API_PREFIX + r"/([^/]+)/servers/([^/]+)/route", SshRouteAPIHandler, kwargs),
        (r"/ssh-keys", SshKeysPageHandler, kwargs),
    ]


def apply(c, settings: Settings, usage: HomeUsage | None = None) -> KeyStore:
    """Register the handlers, scopes, `user` role and templates on the config `c`; return the store."""
    store = store_for(settings.data_dir, settings.ssh_max_keys_per_user)
    c.JupyterHub.extra_handlers = handlers(store, settings, usage)
    c.JupyterHub.custom_scopes = dict(CUSTOM_SCOPES)
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    return store
