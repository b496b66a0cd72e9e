"""Benchmarks of the user image (issue: hardened per-user image). Run by `make bench` via run.py.

- size: uncompressed image size (goal <= 4.8 GB with the scientific stack; the official TF 2.9 GPU
  image is about 6.5 GB)
- start: container start to ready, p50/p95 over N runs with the hub's hardening flags, next to a bare
  `docker run` of the same image (entrypoint `true`) measured in the same run; "ready" is the first
  moment both the Jupyter API and the sshd banner answer (polled every 20 ms), "healthy" is Docker's
  own health status with the image's HEALTHCHECK.
- rebuild: a code-only change (one file under rootfs/) rebuilt with a warm cache (goal <= 30 s).
- layers (`layer_reuse`): the size of each layer, and the layers (MB) a rebuild ships after a one-line
  change to our own files and after a change to the Python packages.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "hub")]
from conftest import HARDENED  # noqa: E402  (the same flags the tests and the hub use)

IMAGE = "devhub/dev-gpu:latest"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": round(percentile(values, 0.5), 3), "p95": round(percentile(values, 0.95), 3),
            "min": round(min(values), 3), "max": round(max(values), 3)}


def side_by_side(a: list[float], b: list[float], a_name: str, b_name: str) -> dict:
    """Two series measured in one run, and the ratio of their medians (a / b)."""
    return {a_name: summary(a), b_name: summary(b), "p50_ratio": round(percentile(a, 0.5) / percentile(b, 0.5), 3)}


def ready(jupyter_port: int, ssh_port: int, prefix: str = "/") -> bool:
    try:
        if requests.get(f"http://127.0.0.1:{jupyter_port}{prefix}api", timeout=1).status_code != 200:
            return False
        with socket.create_connection(("127.0.0.1", ssh_port), timeout=1) as s:
            return s.recv(64).startswith(b"SSH-2.0")
    except (OSError, requests.RequestException):
        return False


class _HubVersion(BaseHTTPRequestHandler):
    """What a starting single-user server asks its hub before it serves (GET of the API root)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("X-JupyterHub-Version", HUB_VERSION)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"version": "%s"}' % HUB_VERSION.encode())

    def log_message(self, *args) -> None:
        pass


HUB_VERSION = "5.5.4"  # the version both lock files pin


@contextmanager
def hub_mode_env() -> Iterator[dict]:
    """The environment a hub gives a user's container (DockerSpawner's JUPYTERHUB_* variables) with
    a stand-in for the hub's API: the container then runs jupyterhub-singleuser, as under the hub,
    and its start can be timed with no hub in the way (the reference for the hub's own overhead)."""
    server = ThreadingHTTPServer(("0.0.0.0", 0), _HubVersion)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prefix = "/user/bench/"
    try:
        yield {"JUPYTERHUB_API_TOKEN": os.urandom(16).hex(), "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-bench",
               "JUPYTERHUB_API_URL": f"http://host.docker.internal:{server.server_address[1]}/hub/api",
               "JUPYTERHUB_USER": "bench", "JUPYTERHUB_BASE_URL": "/", "JUPYTERHUB_SERVICE_PREFIX": prefix,
               "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:8888{prefix}",
               "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback"}
    finally:
        server.shutdown()
        server.server_close()


def one_start(client: docker.DockerClient, hub_env: dict | None = None) -> tuple[float, float]:
    """Seconds from `docker run` to ready, and to Docker's "healthy". Standalone JupyterLab, or with
    `hub_env` (from hub_mode_env) the single-user server a hub runs."""
    volume = client.volumes.create()
    hub = {"environment": hub_env, "extra_hosts": {"host.docker.internal": "host-gateway"}} if hub_env else {}
    prefix = hub_env["JUPYTERHUB_SERVICE_PREFIX"] if hub_env else "/"
    t0 = time.monotonic()
    container = client.containers.run(
        IMAGE, detach=True, volumes={volume.name: {"bind": "/home/jovyan", "mode": "rw"}},
        ports={"2222/tcp": ("127.0.0.1", None), "8888/tcp": ("127.0.0.1", None)}, **hub, **HARDENED)
    try:
        container.reload()
        ports = container.attrs["NetworkSettings"]["Ports"]
        jp, sp = int(ports["8888/tcp"][0]["HostPort"]), int(ports["2222/tcp"][0]["HostPort"])
        ready_at = healthy_at = None
        deadline = t0 + 120
        while time.monotonic() < deadline and healthy_at is None:
            if ready_at is None and ready(jp, sp, prefix):
                ready_at = time.monotonic() - t0
            container.reload()
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                healthy_at = time.monotonic() - t0
            time.sleep(0.02)
        if ready_at is None or healthy_at is None:
            raise RuntimeError(f"container not ready/healthy within 120 s: {container.logs()[-2000:]!r}")
        return ready_at, healthy_at
    finally:
        container.remove(force=True, v=True)
        volume.remove(force=True)


def bare_run(client: docker.DockerClient) -> float:
    t0 = time.monotonic()
    client.containers.run(IMAGE, entrypoint=["true"], remove=True, **HARDENED)
    return time.monotonic() - t0


def rebuild_in_copy(change: str, line: str, tag: str) -> float:
    """Build the user image as `tag` from a copy of the tree (the checkout is untouched) after appending
    `line` to the file `change`; return the build time in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        for part in ("images", "hub", ".dockerignore"):
            src = ROOT / part
            (shutil.copytree if src.is_dir() else shutil.copy)(src, copy / part)
        with open(copy / change, "a") as f:
            f.write(line)
        cmd = ["/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker", "build", "--quiet",
               "-f", "images/dev-gpu/Dockerfile", "-t", tag, "."]
        extra_ca = os.environ.get("EXTRA_CA")
        if extra_ca:  # a package change installs from PyPI again: the build CA, as `make images` passes it
            cmd[-1:-1] = ["--secret", f"id=extra_ca,src={extra_ca}"]
        t0 = time.monotonic()
        subprocess.run(cmd, cwd=copy, check=True, capture_output=True, env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"})
        return time.monotonic() - t0


def code_only_rebuild() -> float:
    """Rebuild after changing one file under rootfs/."""
    elapsed = rebuild_in_copy("images/dev-gpu/rootfs/etc/jupyter/jupyter_server_config.py", f"\n# bench {time.time()}\n",
                              "devhub/dev-gpu:bench-rebuild")
    subprocess.run(["docker", "rmi", "devhub/dev-gpu:bench-rebuild"], capture_output=True)
    return elapsed


def run(runs: int = 10) -> dict:
    client = docker.from_env(timeout=300)
    size = client.images.get(IMAGE).attrs["Size"]
    one_start(client)  # warm-up: page cache, first-run effects
    starts, bares = [], []
    for _ in range(runs):  # interleaved, so both see the same machine noise
        starts.append(one_start(client))
        bares.append(bare_run(client))
    return {
        "image_size_gb": round(size / 1e9, 2),
        "start_to_ready_s": summary([s[0] for s in starts]),
        "start_to_docker_healthy_s": summary([s[1] for s in starts]),
        "bare_docker_run_s": summary(bares),
        "code_only_rebuild_s": round(code_only_rebuild(), 1),
        "goals": {"image_size_gb": 4.8, "start_to_healthy_p50_s": 2.5, "code_only_rebuild_s": 30},
    }


# Dockerfile steps that only set metadata and make no layer (BuildKit's WORKDIR makes one, empty
# when the directory exists).
METADATA_STEPS = ("ARG", "ENV", "CMD", "ENTRYPOINT", "EXPOSE", "USER", "SHELL", "HEALTHCHECK", "LABEL",
                  "STOPSIGNAL", "VOLUME", "ONBUILD")


def layers(image) -> list[dict]:
    """The image's filesystem layers, bottom first: diff id, MB and the step that made it (the
    history's steps that only set metadata make no layer)."""
    steps = [h for h in reversed(image.history())
             if not (h.get("CreatedBy") or "").removeprefix("/bin/sh -c #(nop) ").strip().startswith(METADATA_STEPS)]
    diff_ids = image.attrs["RootFS"]["Layers"]
    if len(steps) != len(diff_ids):  # the history does not line up: sizes unknown, ids still compared
        return [{"diff_id": d, "mb": float("nan"), "step": "?"} for d in diff_ids]
    return [{"diff_id": d, "mb": round(h["Size"] / 1e6, 1), "step": _step(h.get("CreatedBy") or "base image")}
            for d, h in zip(diff_ids, steps)]


def _step(created_by: str) -> str:
    """A history line, short: `RUN |4 ARG=... /bin/sh -eu -c cmd` becomes `RUN cmd`."""
    if created_by.startswith("RUN |") and " -c " in created_by:
        created_by = "RUN " + created_by.split(" -c ", 1)[1]
    return created_by.removesuffix(" # buildkit")[:80]


def shipped_by(change: str, line: str) -> dict:
    """Rebuild after appending `line` to `change` and compare with the current image: the layers a
    host that has the current image must pull (new diff ids), and their size."""
    client = docker.from_env(timeout=600)
    old = {layer["diff_id"] for layer in layers(client.images.get(IMAGE))}
    tag = "devhub/dev-gpu:bench-layers"
    elapsed = rebuild_in_copy(change, line, tag)
    new = layers(client.images.get(tag))
    client.images.remove(tag, force=True)
    changed = [layer for layer in new if layer["diff_id"] not in old]
    return {"rebuild_s": round(elapsed, 1), "layers_shipped": f"{len(changed)}/{len(new)}",
            "mb_shipped": round(sum(layer["mb"] for layer in changed), 1),
            "steps_shipped": [f"{layer['mb']} MB {layer['step']}" for layer in changed]}


def layer_reuse() -> dict:
    """The image's layers with their sizes, and what a rebuild ships after (a) a one-line change to
    our own files and (b) a change to the Python packages above TensorFlow (the lock file changes, so
    every package is installed anew): goals < 50 MB for (a), and no CUDA or TensorFlow layer in (b)."""
    client = docker.from_env(timeout=600)
    code = shipped_by("images/dev-gpu/rootfs/etc/jupyter/jupyter_server_config.py", f"\n# bench {time.time()}\n")
    packages = shipped_by("images/dev-gpu/requirements.lock", f"# bench {time.time()}: same packages, a new install\n")
    reshipped = [step for step in packages["steps_shipped"] if "/layers/cuda/" in step or "/layers/tensorflow/" in step]
    return {
        "image_size_gb": round(client.images.get(IMAGE).attrs["Size"] / 1e9, 2),
        "layers": [f"{layer['mb']} MB {layer['step']}" for layer in layers(client.images.get(IMAGE))],
        "one_line_code_change": code,
        "python_packages_change": {**packages, "cuda_or_tensorflow_reshipped": reshipped},
        "goals": {"image_size_gb": 4.8, "code_change_mb_shipped": 50, "packages_change_ships_cuda_or_tensorflow": False},
        "met": {"code_change": code["mb_shipped"] < 50, "packages_change": not reshipped},
    }
