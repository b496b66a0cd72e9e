"""The user image as a place to work: the scientific stack, pip into the home, one environment for
every kind of shell, supervisorctl, the getting-started notebook, the run-time CA bundle."""

import json
import subprocess

import pytest
import requests

from conftest import start_user_container
from support import exec_out, health, wait_until

SCIENTIFIC = ["pandas", "matplotlib", "scipy", "sklearn", "PIL", "ipywidgets", "tqdm", "flask", "gunicorn",
              "jupyter_server_proxy", "requests"]


def test_scientific_stack_imports_next_to_tensorflow_and_pip_check_is_clean(user_container, keys):
    ssh = user_container.ssh(keys["user"])
    out = ssh.check("python -c 'import tensorflow as tf, numpy, " + ", ".join(SCIENTIFIC) + "; "
                    "print(tf.__version__, numpy.__version__)'", timeout=180)
    assert out.split() == ["2.9.3", "1.23.5"]
    check = ssh.run("PIP_CONSTRAINT= pip check", timeout=120)
    assert check.returncode == 0 and "No broken requirements found" in check.stdout, check.stdout + check.stderr


def test_every_kind_of_shell_finds_the_tensorflow_environment(user_container, keys):
    ssh = user_container.ssh(keys["user"])
    expected = ["/opt/devhub/venv/bin/python", "/opt/devhub/venv/bin/pip", "/opt/devhub/venv/bin/jupyter"]
    for command in ("command -v python pip jupyter",  # ssh host command
                    "bash -lc 'command -v python pip jupyter'",  # login shell
                    "bash -ic 'command -v python pip jupyter' 2>/dev/null"):  # interactive (VS Code terminal)
        assert ssh.check(command).split() == expected, command
    assert ssh.check("bash -lc 'python -c \"import tensorflow as tf; print(tf.__version__)\"'", timeout=180).strip() == "2.9.3"


def test_pip_installs_into_the_home_and_keeps_the_core_pins(user_container, keys, tmp_path):
    ssh = user_container.ssh(keys["user"])
    config = ssh.check("pip config list")
    assert "install.user='true'" in config and "constraints.txt" in config
    # A user package from a local wheel (no network here): lands in ~/.local and imports.
    ssh.check("mkdir -p /tmp/pkg/devhub_probe && echo 'VALUE = 42' > /tmp/pkg/devhub_probe/__init__.py && "
              "printf '[project]\\nname = \"devhub-probe\"\\nversion = \"1.0\"\\n' > /tmp/pkg/pyproject.toml")
    installed = ssh.run("pip install --no-index --no-build-isolation /tmp/pkg", timeout=180)
    assert installed.returncode == 0 and "Successfully installed devhub-probe-1.0" in installed.stdout, installed.stderr
    where = ssh.check("python -c 'import devhub_probe; print(devhub_probe.__file__, devhub_probe.VALUE)'").split()
    assert where[0].startswith("/home/jovyan/.local/lib/python3.9/site-packages/") and where[1] == "42"
    # Replacing numpy (which would break TensorFlow) is refused with the reason.
    refused = ssh.run("pip install --no-index numpy==1.26.4", timeout=120)
    assert refused.returncode != 0 and "numpy==1.23.5" in refused.stdout + refused.stderr


def test_login_shell_prompt_and_supervisorctl_over_ssh(resources, image, keys):
    box = start_user_container(resources, image, authorized_keys=keys["user"].public_line,
                               environment={"DEVHUB_USER": "alice"})
    ssh = box.ssh(keys["user"])
    session = subprocess.run(ssh.ssh_args("-tt"), input="echo PROMPT-CHECK\nexit\n", capture_output=True,
                             text=True, timeout=60)
    assert "alice@devhub:~$" in session.stdout, session.stdout
    status = ssh.check("supervisorctl status")
    assert "jupyter" in status and "RUNNING" in status and "sshd" in status
    before = ssh.check("supervisorctl pid jupyter").strip()
    restarted = ssh.check("supervisorctl restart jupyter", timeout=120)
    assert "jupyter: stopped" in restarted and "jupyter: started" in restarted
    assert ssh.check("supervisorctl pid jupyter").strip() != before
    wait_until(lambda: health(box.container) == "healthy" and
               box.container.exec_run(["devhub-healthcheck"]).exit_code == 0, 120, what="healthy after the restart")


def test_kernel_name_and_no_news_or_update_checks(resources, image):
    box = start_user_container(resources, image, hardened=True, command=["jupyter", "lab"])
    token = box.container.logs().decode().split("?token=")[1].split()[0]
    base = f"http://127.0.0.1:{box.jupyter_port}"
    headers = {"Authorization": f"token {token}"}
    spec = requests.get(f"{base}/api/kernelspecs", headers=headers, timeout=10).json()["kernelspecs"]["python3"]
    assert spec["spec"]["display_name"] == "Python 3 (TensorFlow 2.9)"
    news = requests.get(f"{base}/lab/api/news", headers=headers, timeout=10)
    assert news.status_code == 200 and news.json()["news"] == []
    update = requests.get(f"{base}/lab/api/update", headers=headers, timeout=10)
    assert update.status_code == 200 and update.json().get("notification") is None
    page = requests.get(f"{base}/lab?token={token}", timeout=10).text
    assert "@jupyterlab/apputils-extension:announcements" in page  # listed in disabledExtensions


def test_getting_started_notebook_runs_headless_and_is_copied_once(resources, image, keys):
    box = start_user_container(resources, image, authorized_keys=keys["user"].public_line)
    ssh = box.ssh(keys["user"])
    summary = json.loads(ssh.run_script("run_notebook.py", "/home/jovyan/getting-started.ipynb", timeout=900))
    assert summary["errors"] == [] and summary["executed"] == summary["code_cells"] >= 6, summary
    assert "image/png" in summary["mime_types"]  # the loss curve
    assert "TensorFlow 2.9.3" in summary["text"] and "predictions" in summary["text"] and "gunicorn stopped" in summary["text"]
    assert ssh.check("ls ~/models/getting-started/1").split() == ["assets", "keras_metadata.pb", "saved_model.pb", "variables"]
    # A user's edit survives a restart; a deleted copy is not brought back.
    ssh.check("echo '{\"edited\": true}' > ~/getting-started.ipynb")
    box.container.restart()
    wait_until(lambda: health(box.container) == "healthy", 120, what="healthy after restart")
    assert exec_out(box.container, ["cat", "/home/jovyan/getting-started.ipynb"]).strip() == '{"edited": true}'
    exec_out(box.container, ["rm", "/home/jovyan/getting-started.ipynb"])
    box.container.restart()
    wait_until(lambda: health(box.container) == "healthy", 120, what="healthy after restart")
    assert "getting-started.ipynb" not in exec_out(box.container, ["ls", "/home/jovyan"])


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory):
    """A CA and a server certificate it signed for files.example (like a company's TLS-inspecting proxy)."""
    d = tmp_path_factory.mktemp("ca")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for args in (["req", "-x509", *ec, "-subj", "/CN=devhub test corporate CA", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem"],
                 ["req", *ec, "-subj", "/CN=files.example", "-addext", "subjectAltName=DNS:files.example,IP:127.0.0.1",
                  "-keyout", "leaf.key", "-out", "leaf.csr"],
                 ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
                  "-copy_extensions", "copy", "-out", "leaf.pem"]):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    return {name: (d / f"{name}.pem").read_text() for name in ("ca", "leaf")} | {"key": (d / "leaf.key").read_text()}


TLS_CLIENTS = r"""
openssl s_server -quiet -accept 4433 -cert /tmp/leaf.pem -key /tmp/leaf.key -www >/dev/null 2>&1 &
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/4433) 2>/dev/null && break; sleep 0.1; done
echo "curl=$(curl -sS -o /dev/null -w '%{http_code}' --resolve files.example:4433:127.0.0.1 https://files.example:4433/ 2>&1)"
echo "git=$(git ls-remote https://127.0.0.1:4433/repo.git 2>&1 | head -1)"
python - <<'PY'
import socket, ssl
try:
    with ssl.create_default_context().wrap_socket(socket.create_connection(("127.0.0.1", 4433)), server_hostname="files.example"):
        print("python=ok")
except ssl.SSLError as exc:
    print("python=" + exc.reason)
PY
echo "requests_bundle=$(grep -c 'BEGIN CERTIFICATE' "$REQUESTS_CA_BUNDLE")"
kill %1
"""


@pytest.mark.parametrize("with_extra_ca", [True, False])
def test_run_time_extra_ca_is_trusted_by_curl_git_python_and_requests(resources, image, keys, test_ca, with_extra_ca):
    env = {"DEVHUB_EXTRA_CA": test_ca["ca"]} if with_extra_ca else {}
    box = start_user_container(resources, image, authorized_keys=keys["user"].public_line, environment=env)
    ssh = box.ssh(keys["user"])
    ssh.check("cat > /tmp/leaf.pem", input=test_ca["leaf"])
    ssh.check("umask 077 && cat > /tmp/leaf.key", input=test_ca["key"])
    out = dict(line.split("=", 1) for line in ssh.check("bash -s", input=TLS_CLIENTS, timeout=60).splitlines() if "=" in line)
    system = int(exec_out(box.container, ["grep", "-c", "BEGIN CERTIFICATE", "/etc/ssl/certs/ca-certificates.image.crt"]))
    if with_extra_ca:
        assert out["curl"] == "200", out
        # TLS passed (the web server is no git repository, which git then says).
        assert out["git"] and "certificate" not in out["git"].lower() and "ssl" not in out["git"].lower(), out
        assert out["python"] == "ok", out
        assert int(out["requests_bundle"]) == system + 1
    else:
        assert "certificate" in out["curl"], out  # curl: (60) SSL certificate problem: unable to get local issuer certificate
        assert "certificate" in out["git"].lower(), out
        assert out["python"] == "CERTIFICATE_VERIFY_FAILED", out
        assert int(out["requests_bundle"]) == system
