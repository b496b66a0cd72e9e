"""Where a server start spends its time: the spawner marks each step (SSH keys, GPU claim, network
lookup or creation, peer attach, container (with DockerSpawner's create and start calls inside it),
the server's boot until it answers), and the audit line of the spawn carries the durations and the
wall-clock start, so `make bench` can put the hub's part of spawn-to-ready next to the rest."""

from __future__ import annotations

import time
from contextlib import contextmanager


class Steps:
    def __init__(self) -> None:
        self.began = time.time()  # wall clock: compared with the bench's own request time
        self._t0 = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t0, 4)

    def summary(self) -> dict:
        """For the audit line: when the spawner began, each step's seconds, and the whole."""
        return {"began": round(self.began, 4), **self.seconds, "total": round(time.perf_counter() - self._t0, 4)}
