"""GPU allocation for user servers.

GPU_MODE=none  no device requests, and NVIDIA_VISIBLE_DEVICES=void so that the user image's default
               (`all`) cannot hand out GPUs on hosts whose default runtime is nvidia.
GPU_MODE=all   every server sees every GPU (DeviceRequest count=-1).
GPU_MODE=N     each running server gets its own N devices from GPU_DEVICES; a server that cannot get
               N free devices is refused with "no free GPU: ...".

Bookkeeping survives hub restarts without a file: the devices a server holds are written on its
container as the label `devhub.gpus` (with `devhub.user` and, for a named server, `devhub.server`), and the pool asks Docker for the labels
of the running containers each time it allocates. Claims made in this process and not yet visible
as a container (the container is being created) are held in memory under a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from docker.types import DeviceRequest

from . import names

LABEL_GPUS = "devhub.gpus"
LABEL_USER = "devhub.user"
LABEL_SERVER = "devhub.server"  # a named server's name (devhub.names.server_key makes the owner)


class NoFreeGpu(RuntimeError):
    """Raised when a server asks for more devices than are free; the message is shown to the user."""


@dataclass(frozen=True)
class GpuRequest:
    """What one server gets: Docker device requests, environment and container labels."""

    device_requests: tuple[DeviceRequest, ...]
    env: Mapping[str, str]
    labels: Mapping[str, str]
    devices: tuple[str, ...] = ()


def request_for(mode: str, devices: Sequence[str] = ()) -> GpuRequest:
    """The Docker side of a GPU mode: `none`, `all`, or a concrete list of device ids."""
    if mode == "none":
        return GpuRequest(device_requests=(), env={"NVIDIA_VISIBLE_DEVICES": "void"}, labels={})
    if mode == "all":
        return GpuRequest(
            device_requests=(DeviceRequest(count=-1, capabilities=[["gpu"]]),),
            env={"NVIDIA_VISIBLE_DEVICES": "all"},
            labels={},
        )
    ids = list(devices)
    if not ids:
        raise ValueError("a GPU request in mode N needs device ids")
    return GpuRequest(
        device_requests=(DeviceRequest(device_ids=ids, capabilities=[["gpu"]]),),
        env={"NVIDIA_VISIBLE_DEVICES": ",".join(ids)},
        labels={LABEL_GPUS: ",".join(ids)},
        devices=tuple(ids),
    )


def held(request: GpuRequest | None) -> str:
    """How a server's GPUs are written in its state: "all", "0,1", or "" for none."""
    if request is None or not request.device_requests:
        return ""
    return ",".join(request.devices) or "all"


InUse = Callable[[], Mapping[str, Sequence[str]]]


class GpuPool:
    """Hands out distinct device ids to servers (owners), N at a time.

    `in_use` returns {owner: [device ids]} for the servers that are running now (normally read from
    container labels by docker_in_use); claims are merged with it so a restarted hub knows them.
    """

    def __init__(self, devices: Sequence[str], in_use: InUse):
        self.devices = tuple(devices)
        self._in_use = in_use
        self._pending: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def holders(self) -> dict[str, tuple[str, ...]]:
        held = {owner: tuple(ids) for owner, ids in self._in_use().items()}
        held.update(self._pending)
        return held

    def claim(self, owner: str, count: int) -> tuple[str, ...]:
        """Reserve `count` devices for `owner` (the same ones again if it already holds some)."""
        if count < 1 or count > len(self.devices):
            raise NoFreeGpu(f"no free GPU: {count} device(s) requested, this hub has {len(self.devices)}")
        with self._lock:
            held = self.holders()
            mine = held.pop(owner, ())
            if len(mine) == count and all(d in self.devices for d in mine):
                self._pending[owner] = mine
                return mine
            taken = {d for ids in held.values() for d in ids}
            free = [d for d in self.devices if d not in taken]
            if len(free) < count:
                users = ", ".join(f"{o} ({','.join(ids)})" for o, ids in sorted(held.items()))
                if not free:
                    raise NoFreeGpu(f"no free GPU: all {len(self.devices)} devices are in use by {users}")
                raise NoFreeGpu(
                    f"no free GPU: {count} needed, {len(free)} of {len(self.devices)} free; in use by {users}"
                )
            chosen = tuple(free[:count])
            self._pending[owner] = chosen
            return chosen

    def release(self, owner: str) -> None:
        """Forget this process's claim (the container, and with it its label, is gone)."""
        with self._lock:
            self._pending.pop(owner, None)


def docker_in_use(api) -> Callable[[], dict[str, list[str]]]:
    """An `in_use` for GpuPool reading the `devhub.gpus` labels of containers through `api` (a
    docker.APIClient). Created-but-not-started containers count (they are about to run); exited
    ones do not (user containers are removed on stop).
    """

    def in_use() -> dict[str, list[str]]:
        held: dict[str, list[str]] = {}
        filters = {"label": LABEL_GPUS, "status": ["created", "running", "restarting", "paused"]}
        for container in api.containers(all=True, filters=filters):
            labels = container.get("Labels") or {}
            user = labels.get(LABEL_USER)
            owner = names.server_key(user, labels.get(LABEL_SERVER, "")) if user else container.get("Id", "?")[:12]
            ids = [d for d in labels.get(LABEL_GPUS, "").split(",") if d]
            held.setdefault(owner, []).extend(ids)
        return held

    return in_use


_shared: GpuPool | None = None


def shared_pool(devices: Sequence[str], api) -> GpuPool:
    """The hub's one pool (its spawners and its metrics share the claims in flight), made on first
    use with `api` (a docker.APIClient) to read the labels."""
    global _shared
    if _shared is None:
        _shared = GpuPool(devices, docker_in_use(api))
    return _shared
