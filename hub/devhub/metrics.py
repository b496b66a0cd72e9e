"""Prometheus metrics devhub adds to JupyterHub's own (/hub/metrics): the GPU pool and users'
servers (containers), each at its own URL so Prometheus scrapes them as separate targets and a slow
Docker daemon cannot delay the hub's own metrics.

    GET /hub/api/devhub/metrics/gpus     (read:metrics)  per device: held or free, and by whom
    GET /hub/api/devhub/metrics/servers  (read:metrics)  per user: running server, CPU, memory, OOM
                                                         kills, starts, home size; the volumes' disk

Names are in the module below (the alert rules and the Grafana dashboard in monitoring/ use them).
With METRICS_USER_LABELS=0 the per-user series are summed over users and holders are left out,
for deployments where per-user cardinality matters.

Containers are read at scrape time (Docker's one-shot stats, a few in parallel); OOM kills and
starts are counted from Docker's event stream, from the first scrape on (Prometheus' increase()
takes the restart of a counter in its stride).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from . import gpus
from .disk import HomeUsage, Reserve

log = logging.getLogger("JupyterHub")

USER_SERVER_LABEL = "devhub.role=user-server"


class _Families:
    """A registry's only collector: the families measured for this one scrape."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self):
        return iter(self.families)


def exposition(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def gpu_families(devices: Iterable[str], holders: dict[str, Iterable[str]], user_labels: bool = True) -> list[Metric]:
    """Per device 1 (held) or 0 (free), free and total counts, and who holds each device."""
    held_by = {device: owner for owner, ids in holders.items() for device in ids}
    devices = list(devices)
    in_use = GaugeMetricFamily("devhub_gpu_device_in_use", "1 while a user server holds the device", labels=["device"])
    for device in devices:
        in_use.add_metric([device], 1 if device in held_by else 0)
    total = GaugeMetricFamily("devhub_gpu_devices", "GPU devices in the pool (GPU_DEVICES)", value=len(devices))
    free = GaugeMetricFamily("devhub_gpu_devices_free", "GPU devices no server holds",
                             value=sum(1 for d in devices if d not in held_by))
    families: list[Metric] = [in_use, total, free]
    if user_labels:
        holder = GaugeMetricFamily("devhub_gpu_device_holder", "1 for the user holding the device",
                                   labels=["device", "user"])
        for device in devices:
            if device in held_by:
                holder.add_metric([device, held_by[device]], 1)
        families.append(holder)
    return families


def memory_in_use(stats: dict) -> int:
    """Memory as `docker stats` shows it: usage without the reclaimable page cache."""
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
    return max(0, int(memory.get("usage", 0)) - int(cache))


class Events:
    """OOM kills and starts of user servers, per user, from Docker's event stream (a daemon thread)."""

    def __init__(self, client_factory: Callable[[], object]):
        self.client_factory = client_factory
        self.oom_kills: Counter[str] = Counter()
        self.starts: Counter[str] = Counter()
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._follow, name="devhub-docker-events", daemon=True)
            self._thread.start()

    def count(self, event: dict) -> None:
        user = ((event.get("Actor") or {}).get("Attributes") or {}).get(gpus.LABEL_USER)
        if not user:
            return
        if event.get("status") == "oom" or event.get("Action") == "oom":
            self.oom_kills[user] += 1
        elif event.get("status") == "start" or event.get("Action") == "start":
            self.starts[user] += 1

    def _follow(self) -> None:
        filters = {"type": "container", "event": ["oom", "start"], "label": [USER_SERVER_LABEL]}
        while True:
            try:
                for event in self.client_factory().events(decode=True, filters=filters):
                    self.count(event)
            except Exception as exc:  # noqa: BLE001 - Docker restarting: follow again
                log.warning("Following Docker events for metrics failed: %s", exc)
            time.sleep(5)


class Servers:
    """Users' running servers as Docker reports them, plus home sizes (devhub.disk) and the disk."""

    def __init__(self, client_factory: Callable[[], object], name_prefix: str, usage: HomeUsage,
                 reserve: Reserve | None = None, user_labels: bool = True):
        self.client_factory = client_factory
        self.name_prefix = name_prefix
        self.usage = usage
        self.reserve = reserve
        self.user_labels = user_labels
        self.events = Events(client_factory)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="devhub-metrics")

    def __deepcopy__(self, memo):  # traitlets copies config values; the hub keeps this one
        return self

    def containers(self) -> list[dict]:
        """(user, stats) of every running user server: one-shot stats, fetched in parallel."""
        client = self.client_factory()
        found = client.containers(filters={"label": USER_SERVER_LABEL, "name": f"^/?{self.name_prefix}",
                                           "status": "running"})

        def one(container: dict) -> dict:
            stats = client.stats(container["Id"], stream=False, one_shot=True)
            labels = container.get("Labels") or {}
            return {"user": labels.get(gpus.LABEL_USER, "?"), "server": labels.get(gpus.LABEL_SERVER, ""),
                    "created": container.get("Created", 0), "stats": stats}

        return list(self._pool.map(one, found))

    def families(self, usernames: Iterable[str]) -> list[Metric]:
        self.events.ensure_running()
        per_user = self.user_labels
        labels = ["user"] if per_user else []

        def family(kind, name, doc, per_server=False):
            # A user's servers (the default one: server="") each have their own series.
            return kind(name, doc, labels=labels + ["server"] if per_user and per_server else labels)

        running = family(GaugeMetricFamily, "devhub_user_server_running", "1 for each user's running server", True)
        cpu = family(CounterMetricFamily, "devhub_user_cpu_seconds", "CPU time used by the user's running server", True)
        memory = family(GaugeMetricFamily, "devhub_user_memory_bytes", "Memory in use (without page cache)", True)
        limit = family(GaugeMetricFamily, "devhub_user_memory_limit_bytes", "The server's memory limit", True)
        started = family(GaugeMetricFamily, "devhub_user_server_created_timestamp_seconds",
                         "When the running server's container was created", True)
        ooms = family(CounterMetricFamily, "devhub_user_oom_kills", "Processes killed for memory in the user's servers")
        starts = family(CounterMetricFamily, "devhub_user_server_starts", "Starts of the user's server containers")
        home = family(GaugeMetricFamily, "devhub_user_home_bytes", "Size of the user's home volume (last measurement)")
        totals: dict[str, Counter] = {n: Counter() for n in ("running", "cpu", "memory", "limit")}
        for c in self.containers():
            stats = c["stats"]
            values = {"running": 1, "cpu": int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0)) / 1e9,
                      "memory": memory_in_use(stats), "limit": int((stats.get("memory_stats") or {}).get("limit", 0))}
            for key, value in values.items():
                totals[key][(c["user"], c["server"])] += value
            if per_user:
                started.add_metric([c["user"], c["server"]], c["created"])
        servers = sorted(set().union(*totals.values())) if per_user else []
        users = sorted({user for user, _ in servers})
        for fam, key in ((running, "running"), (cpu, "cpu"), (memory, "memory"), (limit, "limit")):
            if per_user:
                for server in servers:
                    fam.add_metric(list(server), totals[key][server])
            else:
                fam.add_metric([], sum(totals[key].values()))
        for fam, counter in ((ooms, self.events.oom_kills), (starts, self.events.starts)):
            # Every running user's series, 0 until it counts: increase() sees a series' first kill only
            # if the series existed before it.
            for user in sorted(set(users) | set(counter)) if per_user else [""]:
                fam.add_metric([user] if per_user else [], counter[user] if per_user else sum(counter.values()))
        self.usage.ensure_running()
        sizes = {name: self.usage.of(name) for name in usernames}
        for user, size in sorted(sizes.items()) if per_user else [("", sum(s or 0 for s in sizes.values()))]:
            if size is not None:
                home.add_metric([user] if per_user else [], size)
        families: list[Metric] = [running, cpu, memory, limit, ooms, starts, home]
        if per_user:
            families.append(started)
        if self.reserve is not None:
            families += disk_families(self.reserve)
        return families


def disk_families(reserve: Reserve) -> list[Metric]:
    """The file system holding Docker's volumes (homes and the hub's database): one disk for all."""
    size, free = reserve.disk()
    return [GaugeMetricFamily("devhub_volumes_disk_size_bytes", "Size of the file system holding the volumes",
                              value=size),
            GaugeMetricFamily("devhub_volumes_disk_free_bytes", "Space left on it for unprivileged writers",
                              value=free)]


class Measurement:
    """One target's measurement, shared: scrapes that arrive while one runs (several Prometheus
    servers, a scrape that timed out and came again) get its result, and a result younger than
    `reuse` seconds is served again, so no scrape rate can pile Docker calls onto the daemon that
    users' spawns wait on. Measured on a thread of its own (Docker calls block)."""

    def __init__(self, measure: Callable[[list[str]], list[Metric]], reuse: float = 5.0):
        self.measure = measure
        self.reuse = reuse
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devhub-measure")
        self._running: asyncio.Future | None = None
        self._last: tuple[float, bytes] | None = None

    def __deepcopy__(self, memo):  # traitlets copies config values; the hub keeps this one
        return self

    async def exposition(self, usernames: list[str]) -> bytes:
        if self._last and time.monotonic() - self._last[0] < self.reuse:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.ensure_future(self._measure(usernames))
            self._running.add_done_callback(lambda _: setattr(self, "_running", None))
        return await asyncio.shield(self._running)

    async def _measure(self, usernames: list[str]) -> bytes:
        started = time.monotonic()
        families = await asyncio.get_running_loop().run_in_executor(self._executor, self.measure, usernames)
        families.append(GaugeMetricFamily("devhub_metrics_collect_seconds", "Time taken to collect this target",
                                          value=time.monotonic() - started))
        body = exposition(families)
        self._last = (time.monotonic(), body)
        return body


class MetricsHandler(APIHandler):
    """Prometheus text for one target."""

    def initialize(self, measurement: Measurement):
        self.measurement = measurement

    @needs_scope("read:metrics")
    async def get(self):
        usernames = [name for (name,) in self.db.query(orm.User.name)]
        body = await self.measurement.exposition(usernames)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


def handlers(pool_of: Callable[[], gpus.GpuPool], servers: Servers, user_labels: bool) -> list[tuple]:
    def measure_gpus(_usernames):
        pool = pool_of()
        return gpu_families(pool.devices, pool.holders(), user_labels)

    return [(r"/api/devhub/metrics/gpus", MetricsHandler, {"measurement": Measurement(measure_gpus)}),
            (r"/api/devhub/metrics/servers", MetricsHandler, {"measurement": Measurement(servers.families)})]
