"""Properties of the built image: no privilege-raising files, no build-time CA, a clean Dockerfile."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PEM = re.compile(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END CERTIFICATE-----", re.S)


def run_in_image(docker_client, image, *cmd) -> str:
    out = docker_client.containers.run(image, list(cmd), entrypoint=[], user="0", remove=True, network_disabled=True)
    return out.decode()


def test_no_setuid_or_setgid_files(docker_client, image):
    found = run_in_image(docker_client, image, "find", "/", "-xdev", "-type", "f", "-perm", "/6000")
    assert found == ""
    assert run_in_image(docker_client, image, "sh", "-c", "command -v sudo su-exec gosu || true").strip() in ("", "/bin/su", "/usr/bin/su")


def test_build_time_ca_is_absent_from_the_image(docker_client, image):
    # The image's bundle (the system path links to the run-time bundle devhub-start writes).
    stock = run_in_image(docker_client, image, "cat", "/etc/ssl/certs/ca-certificates.image.crt")
    stock_certs = {c.replace("\n", "") for c in PEM.findall(stock)}
    extra_ca = os.environ.get("EXTRA_CA")
    if not extra_ca:
        # Built without an extra CA: the bundle must be Debian's own (as many certs as its directory).
        count = run_in_image(docker_client, image, "sh", "-c", "ls /usr/share/ca-certificates/mozilla | wc -l")
        assert len(stock_certs) == int(count)
        return
    extra = [c for c in PEM.findall(Path(extra_ca).read_text()) if c.replace("\n", "") not in stock_certs]
    assert extra, f"EXTRA_CA={extra_ca} adds no certificate to Debian's bundle; nothing to check"
    # Search every file of the image for a distinctive line of each extra certificate.
    needles = [c.splitlines()[len(c.splitlines()) // 2] for c in extra]
    pattern_file = "\n".join(needles)
    found = run_in_image(docker_client, image, "sh", "-c",
                         f"printf '%s\\n' '{pattern_file}' > /tmp/n && grep -rlsF -f /tmp/n / "
                         "--exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude=n || true")
    assert found.strip() == ""


def test_image_is_tagged_with_the_git_sha(docker_client, image):
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    tags = docker_client.images.get(image).tags
    assert "devhub/dev-gpu:latest" in tags
    assert f"devhub/dev-gpu:{sha}" in tags, tags


@pytest.mark.parametrize("dockerfile", sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("**/Dockerfile") if ".venv" not in p.parts))
def test_hadolint_is_clean(venv_bin, dockerfile):
    result = subprocess.run([str(venv_bin / "hadolint"), dockerfile], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cuda_and_tensorflow_ship_in_layers_of_their_own(docker_client, image):
    """A change to the Python packages above TensorFlow rebuilds the last venv layer only, so hosts
    that update pull neither CUDA (~2.9 GB) nor TensorFlow (~1.2 GB) again (`make bench` → layers)."""
    history = [(h.get("CreatedBy") or "", h["Size"]) for h in reversed(docker_client.images.get(image).history())]
    steps = {"COPY /layers/cuda/": 2e9, "COPY /layers/tensorflow/": 8e8, "COPY /opt/devhub/venv": 3e8}
    found = [next((i, size) for i, (step, size) in enumerate(history) if step.startswith(prefix)) for prefix in steps]
    assert [i for i, _ in found] == sorted(i for i, _ in found), history  # CUDA, then TensorFlow, then the rest
    for (prefix, least), (_, size) in zip(steps.items(), found):
        assert size > least, f"{prefix}: {size / 1e6:.0f} MB"


def test_notebook_server_start_builds_no_grammar_parsers(docker_client, image):
    """The notebook server imports jsonschema's format checkers (through jupyter_events); with
    rfc3987-syntax installed that import builds ~35 Lark parsers, 2.2 of the 3.3 CPU-seconds a
    JupyterLab start took (py-spy). The lock leaves it out (Makefile `lock`); events still validate."""
    probe = ("import sys, jupyterhub.singleuser.app, jupyterlab.labapp, jupyter_events; "
             "from jupyter_events.validators import validate_schema; "
             "validate_schema({'$id': 'https://example.org/e', 'version': '1', 'type': 'object', "
             "'properties': {}, 'title': 't'}); "
             "print(sorted(m for m in ('rfc3987_syntax', 'lark') if m in sys.modules))")
    assert run_in_image(docker_client, image, "python3", "-c", probe).strip() == "[]"


def test_tensorflow_imports_from_valid_bytecode(docker_client, image):
    """TensorFlow's layer has fixed time stamps and bytecode compiled against them (build/layer-out):
    stale bytecode on the read-only root would make every `import tensorflow` compile its thousands
    of modules again."""
    out = docker_client.containers.run(image, ["python", "-v", "-c", "import tensorflow"], entrypoint=[], remove=True,
                                       read_only=True, tmpfs={"/tmp": ""}, network_disabled=True, stdout=False,
                                       stderr=True).decode()
    site = "/opt/devhub/venv/lib/python3.9/site-packages/"
    stale = [line for line in out.splitlines() if "bytecode is stale" in line]
    from_bytecode = [line for line in out.splitlines() if line.startswith("# ") and f" matches {site}tensorflow/" in line]
    assert not stale, stale[:10]
    assert len(from_bytecode) > 500, out[-2000:]
