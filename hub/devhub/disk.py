"""Disk: users' home volumes measured for admins and their owners, a soft limit that warns, and
space kept for the hub's own database.

Docker keeps every named volume (users' homes, the hub's data) on one file system, so one user who
fills their home fills the disk under the hub's database too. Three things help:

- HomeUsage measures every home volume with Docker's own accounting (`docker system df -v`), in the
  background every DISK_USAGE_INTERVAL seconds: admins see it (disk-usage page and API, `make
  status`), and a user above USER_HOME_SOFT_LIMIT is warned on the hub's home page and when an SSH
  shell opens.
- Reserve: HUB_DISK_RESERVE bytes are held in a file next to the hub's database. When free space
  falls below that much, the file is deleted (an error in the log), which gives the database room to
  go on; it is made again once the disk has twice that free.
- Hard limits need the file system's help (XFS project quotas, a volume driver with quotas, or the
  hub's data on its own file system): README "Disk".
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger("JupyterHub")

RESERVE_FILE = ".devhub-disk-reserve"


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Reserve:
    """A file of `size` bytes in `directory` that is given up when the disk is nearly full."""

    def __init__(self, directory: str | os.PathLike, size: int):
        self.path = Path(directory) / RESERVE_FILE
        self.size = size

    def free(self) -> int:
        return self.disk()[1]

    def disk(self) -> tuple[int, int]:
        """(size, free bytes for unprivileged writers) of the file system holding the reserve."""
        st = os.statvfs(self.path.parent)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def check(self) -> str:
        """Make or release the reserve as free space says; what was done: held, made, released, none."""
        if not self.size:
            return "none"
        free = self.free()
        held = self.path.exists()
        if held and free < self.size:
            self.path.unlink()
            log.error("Disk nearly full (%s free): released the hub's %s reserve so its database can go on; "
                      "free space, e.g. the largest homes on the disk-usage page", human(free), human(self.size))
            return "released"
        if not held and free >= 2 * self.size:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            except OSError as exc:
                log.warning("Could not reserve %s for the hub's database: %s", human(self.size), exc)
                os.unlink(self.path)
                return "none"
            finally:
                os.close(fd)
            return "made"
        return "held" if held else "none"


class HomeUsage:
    """Sizes of users' home volumes, refreshed in the background; the soft-limit notice."""

    def __init__(self, volume_of: Callable[[str], str], soft_limit: int = 0, interval: float = 300,
                 reserve: Reserve | None = None, docker_client: Callable[[], object] | None = None):
        self.volume_of = volume_of
        self.soft_limit = soft_limit
        self.interval = interval
        self.reserve = reserve
        self.sizes: dict[str, int] = {}  # volume name -> bytes
        self.measured_at = 0.0
        self._client_factory = docker_client or docker_api
        self._task: asyncio.Task | None = None

    def __deepcopy__(self, memo):  # traitlets copies config values; everyone must share this one
        return self

    def ensure_running(self) -> None:
        """Start the background measurements on the running event loop (from the first request)."""
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                self.sizes = await loop.run_in_executor(None, self.measure)
                self.measured_at = time.time()
                if self.reserve:
                    await loop.run_in_executor(None, self.reserve.check)
            except Exception as exc:  # noqa: BLE001 - measured again next round
                log.warning("Measuring home volumes failed: %s", exc)
            await asyncio.sleep(self.interval)

    def measure(self) -> dict[str, int]:
        df = self._client_factory().df()
        return {v["Name"]: int((v.get("UsageData") or {}).get("Size", -1)) for v in df.get("Volumes") or []}

    def of(self, username: str) -> int | None:
        size = self.sizes.get(self.volume_of(username))
        return size if size is not None and size >= 0 else None

    def notice(self, username: str) -> str:
        """The warning for a user above the soft limit ("" otherwise, or before the first measurement)."""
        size = self.of(username)
        if not self.soft_limit or size is None or size <= self.soft_limit:
            return ""
        return (f"Your home directory uses {human(size)}, above the soft limit of {human(self.soft_limit)}: "
                "please delete or move files you no longer need (the disk is shared with your team).")

    def page_notice(self, user) -> str:
        """template_vars entry: the notice for the signed-in user of a hub page."""
        self.ensure_running()
        return self.notice(user.name) if user is not None else ""

    def report(self, usernames: list[str]) -> dict:
        """For admins: every user's home size, who is above the soft limit, free disk."""
        users = []
        for name in sorted(usernames):
            size = self.of(name)
            users.append({"name": name, "volume": self.volume_of(name), "bytes": size,
                          "over_soft_limit": bool(self.soft_limit and size is not None and size > self.soft_limit)})
        return {"users": users, "soft_limit_bytes": self.soft_limit or None, "measured_at": self.measured_at or None,
                "free_bytes": self.reserve.free() if self.reserve else None}


@functools.cache
def docker_api():
    """The hub's own Docker API client (measurements, metrics), made on first use."""
    import docker

    return docker.APIClient(base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"), version="auto",
                            timeout=300)
