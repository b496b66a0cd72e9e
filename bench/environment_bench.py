"""Benchmarks of the user environment (issue: a server people can work in). Run by `make bench`.

- image: uncompressed size and the largest layers (the scientific stack lives in the venv layer).
- first_cell: a notebook's first cell, `import tensorflow`, in a fresh kernel of a hardened standalone
  server (kernel start request to the cell's result), next to `python -c "import tensorflow"` in the
  same container, measured in the same run.
- egress: a 50+ MB wheel from files.pythonhosted.org downloaded by a hardened user container through
  the egress proxy (internal network, per-user credentials, the host's local CAs as USER_EXTRA_CA), next
  to the same download by the host itself, interleaved; MB/s and the ratio.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import docker
import requests
import websocket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "hub"))
from conftest import HARDENED  # noqa: E402  (the hub's hardening flags)
from egress_support import EgressLab, egress  # noqa: E402
from stack_support import kernel_execute  # noqa: E402
from support import wait_until  # noqa: E402

IMAGE = "devhub/dev-gpu:latest"
WHEEL = ("nvidia-curand-cu11", "nvidia_curand_cu11-10.3.0.86-py3-none-manylinux1_x86_64.whl")  # about 58 MB
PREFIX = "devhub-bench-env"


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(values), "p50": round(ordered[len(ordered) // 2], 3), "min": round(ordered[0], 3),
            "max": round(ordered[-1], 3)}


# What the scientific stack added to site-packages (its packages and their own dependencies).
SCIENTIFIC = ("pandas matplotlib scipy scipy.libs sklearn scikit_learn.libs PIL pillow.libs ipywidgets widgetsnbextension "
              "jupyterlab_widgets tqdm flask gunicorn jupyter_server_proxy contourpy kiwisolver fontTools pytz joblib "
              "threadpoolctl aiohttp yarl multidict frozenlist propcache simpervisor cycler pyparsing")
SITE = "/opt/devhub/venv/lib/python3.9/site-packages"


def image_layers(client: docker.DockerClient) -> dict:
    image = client.images.get(IMAGE)
    layers = sorted(({"mb": round(h["Size"] / 1e6, 1), "step": h["CreatedBy"][:90]} for h in image.history() if h["Size"]),
                    key=lambda layer: -layer["mb"])
    du = client.containers.run(IMAGE, entrypoint=["sh", "-c", f"cd {SITE} && du -smc {SCIENTIFIC} | tail -1"],
                               remove=True).decode().split()[0]
    return {"size_gb": round(image.attrs["Size"] / 1e9, 3), "scientific_stack_mb": int(du), "largest_layers": layers[:4]}


def first_cell(client: docker.DockerClient, runs: int = 5) -> dict:
    home = client.volumes.create()
    container = client.containers.run(IMAGE, command=["jupyter", "lab"], detach=True,
                                      volumes={home.name: {"bind": "/home/jovyan", "mode": "rw"}},
                                      ports={"8888/tcp": ("127.0.0.1", None)}, **HARDENED)
    try:
        token = wait_until(lambda: (m := re.search(r"\?token=(\w+)", container.logs().decode())) and m.group(1),
                           120, what="the standalone server's token")
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"]
        base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}
        wait_until(lambda: requests.get(f"{base}/api/status", headers=headers, timeout=2).ok, 120, what="the API")
        cells, plain = [], []
        for _ in range(runs):
            t0 = time.monotonic()
            kernel = requests.post(f"{base}/api/kernels", headers=headers, json={}, timeout=60).json()["id"]
            ws = websocket.create_connection(f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels",
                                             header=[f"Authorization: token {token}"], timeout=120)
            out = kernel_execute(ws, "import tensorflow as tf; print(tf.__version__)", timeout=300)
            cells.append(time.monotonic() - t0)
            assert out.strip().endswith("2.9.3"), out
            ws.close()
            requests.delete(f"{base}/api/kernels/{kernel}", headers=headers, timeout=60)
            t0 = time.monotonic()
            assert container.exec_run(["python", "-c", "import tensorflow"]).exit_code == 0
            plain.append(time.monotonic() - t0)
        return {"first_cell_import_tensorflow_s": summary(cells), "python_import_tensorflow_s": summary(plain)}
    finally:
        container.remove(force=True, v=True)
        home.remove(force=True)


def wheel_url() -> tuple[str, str]:
    page = requests.get(f"https://pypi.org/simple/{WHEEL[0]}/", timeout=60).text
    match = re.search(r'href="(https://[^"#]+/' + re.escape(WHEEL[1]) + r')#sha256=([0-9a-f]+)"', page)
    assert match, f"{WHEEL[1]} not found on PyPI"
    return match.group(1), match.group(2)


def egress_download(client: docker.DockerClient, runs: int = 3) -> dict:
    url, sha256 = wheel_url()
    lab = EgressLab(client, PREFIX)
    try:
        _, key = lab.proxy("egress", user_alias=egress.SERVICE)
        user = lab.user_server(key, "bench")
        curl = ["curl", "-sS", "--fail", "-o", "/tmp/wheel", "-w", "%{time_total} %{size_download}", url]
        proxied, direct = [], []
        for _ in range(runs):  # interleaved: both see the same network and machine
            result = user.exec_run(curl)
            assert result.exit_code == 0, result.output
            seconds, size = map(float, result.output.decode().split())
            digest = user.exec_run(["sha256sum", "/tmp/wheel"]).output.decode().split()[0]
            assert digest == sha256, "the download through the proxy is corrupt"
            proxied.append(size / seconds / 1e6)
            out = subprocess.run(curl[:4] + ["/dev/null"] + curl[5:], capture_output=True, text=True, check=True).stdout
            seconds, size = map(float, out.split())
            direct.append(size / seconds / 1e6)
        return {
            "file_mb": round(size / 1e6, 1),
            "through_egress_proxy_mb_s": summary(proxied),
            "host_direct_mb_s": summary(direct),
            "proxy_vs_direct_ratio_p50": round(summary(proxied)["p50"] / summary(direct)["p50"], 2),
        }
    finally:
        lab.close()


def run() -> dict:
    client = docker.from_env(timeout=300)
    return {"image": image_layers(client), "notebook": first_cell(client), "egress": egress_download(client)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
