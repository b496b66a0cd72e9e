"""The sharing page: /hub/sharing, where a user shares one of their servers with another user or
through a share code, sees who has access, and revokes it (JupyterHub 5 sharing: the page's script
calls /hub/api/shares/{owner}/{server} and /hub/api/share-codes/{owner}/{server}).

A share grants JupyterHub's default share scope, access:servers!server=owner/name: the browser may
open that one server, on its owner's origin (https://<owner>.<host>/user/<owner>/<name>/), nothing
else. Users may share their own servers through the `user` role (devhub.scopes.SHARING_SCOPES);
devhub's custom SSH scopes are not share scopes, and the SSH gateway only accepts the owner's own
keys, so a share never grants SSH or key management.
"""

from __future__ import annotations

from urllib.parse import quote

from jupyterhub.handlers.base import BaseHandler
from tornado import web

from . import names

class SharingPageHandler(BaseHandler):
    @web.authenticated
    async def get(self):
        user = self.current_user
        owner = quote(user.name, safe="")
        servers = []
        default = [""] if "" in user.orm_spawners else []  # listed once JupyterHub has its record
        for name in default + names.named_servers(user):
            spawner = user.spawners.get(name)  # dict.get: stopped servers are not instantiated
            servers.append({
                "name": name,
                "label": name or "default server",
                "running": bool(spawner is not None and spawner.ready),
                "url": user.public_url(name),
                "shares_url": f"{self.hub.base_url}api/shares/{owner}/{quote(name, safe='')}",
                "codes_url": f"{self.hub.base_url}api/share-codes/{owner}/{quote(name, safe='')}",
            })
        html = await self.render_template("sharing.html", servers=servers)
        self.finish(html)


def handlers() -> list[tuple]:
    return [(r"/sharing", SharingPageHandler)]
