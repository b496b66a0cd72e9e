"""Admins' view of disk usage (devhub.disk): every user's home size and who is above the soft limit.

    GET /hub/api/devhub/disk   (admin:users)  {"users": [{"name", "volume", "bytes", "over_soft_limit"}],
                                              "soft_limit_bytes", "measured_at", "free_bytes"}
    GET /hub/disk-usage        (admins)       the same as a page, linked from admins' home page
"""

from __future__ import annotations

import json

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from .disk import HomeUsage, human


class _UsageMixin:
    usage: HomeUsage

    def initialize(self, usage: HomeUsage):
        self.usage = usage

    def report(self) -> dict:
        self.usage.ensure_running()
        return self.usage.report([name for (name,) in self.db.query(orm.User.name)])


class DiskUsageAPIHandler(_UsageMixin, APIHandler):
    @needs_scope("admin:users")
    def get(self):
        self.write(json.dumps(self.report()))


class DiskUsagePageHandler(_UsageMixin, BaseHandler):
    @web.authenticated
    async def get(self):
        if not self.current_user.admin:
            raise web.HTTPError(403, "Only admins can see everyone's disk usage.")
        report = self.report()
        html = await self.render_template("disk-usage.html", report=report, human=human)
        self.finish(html)


def handlers(usage: HomeUsage) -> list[tuple]:
    return [(r"/api/devhub/disk", DiskUsageAPIHandler, {"usage": usage}),
            (r"/disk-usage", DiskUsagePageHandler, {"usage": usage})]
