"""A user's server as a place to work, on the real stack: the scientific stack in a notebook, pip
through the egress proxy into the home, what the egress proxy refuses and logs, TensorBoard at the
user's own URL, one environment over SSH, and EGRESS=off.

This host reaches PyPI only through a TLS-intercepting proxy whose CA is in the host's local CAs:
the corporate case, so the stack runs with USER_EXTRA_CA (see stack_support.stack_env)."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
from urllib.parse import urlsplit

import pytest
import requests

from stack_support import hub_api, run_in_new_kernel, start_server, stop_server, user_container
from support import SshTarget, exec_out, free_port, make_keypair, wait_until

PACKAGE, VERSION = "tabulate", "0.9.0"  # small, pure Python, not in the image
HOST_KEY = "/home/jovyan/.local/share/devhub/ssh/ssh_host_ed25519_key.pub"


@pytest.fixture(scope="module")
def alice_ssh(stack, alice_token, tmp_path_factory) -> SshTarget:
    key = make_keypair(tmp_path_factory.mktemp("alice-env"), name="alice-env")
    added = hub_api(stack, alice_token, "POST", "/devhub/ssh/users/alice/keys", json={"name": "env-tests", "key": key.public_line})
    assert added.status_code == 201, added.text
    start_server(stack, alice_token, "alice")
    return SshTarget(stack.ssh_port, key.private, user="alice")


def test_interactive_ssh_login_shell_has_the_tensorflow_environment(alice_ssh):
    script = ("command -v python pip jupyter\n"
              "python -c 'import tensorflow as tf; print(\"TF-\" + tf.__version__)'\n"
              "hostname\nexit\n")
    session = subprocess.run(alice_ssh.ssh_args("-tt"), input=script, capture_output=True, text=True, timeout=240)
    out = session.stdout.replace("\r", "")
    assert session.returncode == 0, out + session.stderr
    for tool in ("python", "pip", "jupyter"):
        assert f"\n/opt/devhub/venv/bin/{tool}\n" in out, out
    assert "\nTF-2.9.3\n" in out, out
    assert "alice@devhub:~$" in out and "\ndevhub-alice\n" in out, out
    assert alice_ssh.check("bash -lc 'command -v python'").strip() == "/opt/devhub/venv/bin/python"


def test_pip_install_user_through_the_egress_proxy_persists(stack, alice_token, alice_ssh):
    installed = alice_ssh.run(f"pip install --user {PACKAGE}=={VERSION}", timeout=300)
    assert installed.returncode == 0 and f"Successfully installed {PACKAGE}-{VERSION}" in installed.stdout, \
        installed.stdout + installed.stderr
    probe = f"import {PACKAGE}; print({PACKAGE}.__file__)"
    home_site = "/home/jovyan/.local/lib/python3.9/site-packages/"
    assert run_in_new_kernel(stack, alice_token, "alice", probe).strip().startswith(home_site)
    assert alice_ssh.check(f"python -c '{probe}'").strip().startswith(home_site)
    stop_server(stack, alice_token, "alice")
    start_server(stack, alice_token, "alice")
    assert run_in_new_kernel(stack, alice_token, "alice", probe).strip().startswith(home_site)


def test_home_and_pip_packages_survive_a_user_image_upgrade(stack, alice_token, alice_ssh, docker_client):
    """A rebuilt user image under a new tag: alice's next start runs it, with her files, her
    `pip --user` package and her server's SSH host key intact."""
    alice_ssh.check(f"echo precious > ~/work.txt; python -c 'import {PACKAGE}' 2>/dev/null || "
                    f"pip install --quiet --user {PACKAGE}=={VERSION}", timeout=300)
    host_key = exec_out(user_container(docker_client, "alice"), ["cat", HOST_KEY])
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(b"FROM devhub/dev-gpu:latest\nENV DEVHUB_IMAGE_RELEASE=upgrade-test\n"),
        tag="devhub/dev-gpu:upgrade-test", rm=True)
    stop_server(stack, alice_token, "alice")
    stack.recreate_hub(USER_IMAGE="devhub/dev-gpu:upgrade-test")
    try:
        start_server(stack, alice_token, "alice")
        container = user_container(docker_client, "alice")
        assert container.image.id == image.id
        assert exec_out(container, ["sh", "-c", "echo $DEVHUB_IMAGE_RELEASE"]).strip() == "upgrade-test"
        assert alice_ssh.check("cat ~/work.txt").strip() == "precious"
        assert alice_ssh.check(f"python -c 'import {PACKAGE}; print({PACKAGE}.__version__)'").strip() == VERSION
        assert exec_out(container, ["cat", HOST_KEY]) == host_key
        stop_server(stack, alice_token, "alice")
    finally:
        stack.recreate_hub()
        docker_client.images.remove("devhub/dev-gpu:upgrade-test", force=True)
    start_server(stack, alice_token, "alice")


def proxied(ssh: SshTarget, url: str) -> tuple[str, str]:
    """(HTTP status, body) of a request from alice's server sent through her egress proxy explicitly."""
    out = ssh.check(f"curl -sS --max-time 30 --noproxy '' --proxy \"$HTTP_PROXY\" -o /tmp/egress-body "
                    f"-w '%{{http_code}}' '{url}'; echo; cat /tmp/egress-body", timeout=60)
    status, _, body = out.partition("\n")
    return status.strip(), body


def test_egress_proxy_refuses_internal_and_unlisted_hosts_and_logs_the_user(stack, alice_ssh, bob_token, docker_client):
    start_server(stack, bob_token, "bob")
    bob_server = user_container(docker_client, "bob").name
    network = docker_client.networks.get(user_container(docker_client, "alice").attrs["HostConfig"]["NetworkMode"])
    docker_host = network.attrs["IPAM"]["Config"][0]["Gateway"]  # the host's address on alice's network
    host_ip = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()[0]

    # Allowed: PyPI over TLS (through the run-time extra CA) works.
    assert alice_ssh.check("curl -sS -o /dev/null -w '%{http_code}' https://pypi.org/simple/tabulate/", timeout=60) == "200"
    # Not on the allowlist: a clear refusal, for plain HTTP and for TLS.
    status, body = proxied(alice_ssh, "http://example.com/")
    assert status == "403" and "example.com is not on this devhub's allowlist" in body, body
    tls = alice_ssh.run("curl -sS --max-time 30 https://example.com/", timeout=60)
    assert tls.returncode == 56 and "403 from proxy after CONNECT" in tls.stderr, tls.stderr
    # Internal addresses, whatever the allowlist says.
    proxy_ip = [c["IPv4Address"].split("/")[0] for c in network.attrs["Containers"].values()
                if c["Name"] == stack.container(docker_client, "proxy").name][0]
    for url in ("http://169.254.169.254/latest/meta-data/", "http://hub-api:8081/hub/api/", f"http://{proxy_ip}:8001/api/routes",
                f"http://{bob_server}:8888/", f"http://{docker_host}/", f"http://{host_ip}/", "http://localhost:3128/"):
        status, body = proxied(alice_ssh, url)
        assert status == "403" and "is an internal address" in body, (url, status, body[:300])
    # Without the proxy there is no way out: no route, and no external DNS (internal names resolve).
    pypi_ip = socket.gethostbyname("pypi.org")
    direct = alice_ssh.run(f"python -c 'import socket; socket.create_connection((\"{pypi_ip}\", 443), 10)'")
    # No route (newer engines) or dropped at the bridge (this engine): either way nothing answers.
    assert direct.returncode == 1 and re.search(r"Network is unreachable|timed out", direct.stderr), direct.stderr
    assert alice_ssh.run("getent hosts hub-api").returncode == 0  # the hub's API, through nginx
    dns = alice_ssh.run("getent hosts pypi.org", timeout=60)
    assert dns.returncode == 2 and dns.stdout == "", dns
    # One JSON line per request, naming alice.
    lines = [json.loads(line.split("|", 1)[1]) for line in stack.compose("logs", "--no-color", "egress").stdout.splitlines()
             if "|" in line and line.split("|", 1)[1].strip().startswith("{")]
    mine = [entry for entry in lines if entry["user"] == "alice"]
    assert any(e["host"] == "pypi.org" and e["verdict"] == "TCP_TUNNEL" for e in mine), lines[-5:]
    assert any(e["host"] == "example.com" and e["verdict"] == "TCP_DENIED" and e["status"] == 403 for e in mine), lines[-5:]
    assert any(e["host"] == "169.254.169.254" and e["verdict"] == "TCP_DENIED" for e in mine), lines[-5:]


def test_wrong_proxy_credentials_are_refused(alice_ssh):
    forged = alice_ssh.check("echo \"$HTTP_PROXY\" | sed 's#//alice:#//bob:#'").strip()
    assert forged.startswith("http://bob:")
    result = alice_ssh.run(f"curl -sS --max-time 30 --proxy '{forged}' -o /dev/null -w '%{{http_code}}' http://pypi.org/simple/")
    assert result.stdout.strip() == "407", result.stdout + result.stderr


def test_server_log_never_shows_the_egress_password(alice_ssh, docker_client):
    """The proxy URL in a user's environment carries her egress password; nothing her server starts
    writes it to the container's log (JupyterLab's PyPI extension manager did, on every start)."""
    proxy = urlsplit(alice_ssh.check('echo "$HTTP_PROXY"').strip())
    assert proxy.username == "alice" and len(proxy.password or "") >= 16, proxy
    log = user_container(docker_client, "alice").logs().decode()
    assert "Extension Manager is 'readonly'" in log, log[-3000:]  # the start got past the extension manager
    assert proxy.password not in log


def test_tensorboard_opens_at_the_users_own_url_only(stack, alice, bob, alice_token):
    start_server(stack, alice_token, "alice")
    url = f"{stack.server_url('alice')}/tensorboard/"
    page = wait_until(lambda: (r := alice.session.get(url, timeout=150)).status_code == 200 and r, 240,
                      interval=1, what="TensorBoard to answer")
    assert "<title>TensorBoard</title>" in page.text or "tf-tensorboard" in page.text, page.text[:500]
    assert "/user/alice/tensorboard/" in page.url
    refused = bob.session.get(url, timeout=60)
    assert refused.status_code == 403 and "tf-tensorboard" not in refused.text, (refused.status_code, refused.url)


def test_a_served_model_is_reached_through_ssh_tunnel_and_server_proxy(stack, alice, bob, alice_token, alice_ssh):
    """The articles' serving pattern: a web app on port 5000 in the server, reached from a laptop
    through `ssh -L` and from the browser at /user/alice/proxy/5000/ (alice only)."""
    start_server(stack, alice_token, "alice")
    alice_ssh.check("mkdir -p /tmp/serve && echo model-says-hello > /tmp/serve/index.html && "
                    "(nohup python -m http.server 5000 --bind 127.0.0.1 --directory /tmp/serve >/dev/null 2>&1 &)")
    local = free_port()
    tunnel = subprocess.Popen(alice_ssh.ssh_args("-N", "-L", f"{local}:localhost:5000"), stderr=subprocess.PIPE)
    try:
        body = wait_until(lambda: _get(f"http://127.0.0.1:{local}/"), 60, interval=0.5, what="the tunnel")
        assert body.strip() == "model-says-hello"
    finally:
        tunnel.terminate()
        try:
            tunnel.wait(10)
        except subprocess.TimeoutExpired:  # seen once in a clean-clone run: the ssh client outlived SIGTERM by 10 s
            tunnel.kill()
            tunnel.wait(10)
    via_proxy = alice.session.get(f"{stack.server_url('alice')}/proxy/5000/", timeout=60)
    assert via_proxy.status_code == 200 and via_proxy.text.strip() == "model-says-hello"
    refused = bob.session.get(f"{stack.server_url('alice')}/proxy/5000/", timeout=60)
    assert refused.status_code == 403 and "model-says-hello" not in refused.text
    alice_ssh.run("pkill -f 'http.server 5000'")


def _get(url: str) -> str | None:
    try:
        response = requests.get(url, timeout=5)
    except requests.RequestException:
        return None
    return response.text if response.ok else None


def test_supervisorctl_restarts_jupyter_over_ssh(stack, alice_ssh, alice_token, docker_client):
    start_server(stack, alice_token, "alice")
    container = user_container(docker_client, "alice")
    before = alice_ssh.check("supervisorctl pid jupyter").strip()
    out = alice_ssh.check("supervisorctl restart jupyter", timeout=120)
    assert "jupyter: started" in out
    assert alice_ssh.check("supervisorctl pid jupyter").strip() != before
    wait_until(lambda: container.exec_run(["devhub-healthcheck"]).exit_code == 0, 120, interval=0.5,
               what="the health check to pass again")
    wait_until(lambda: hub_api(stack, alice_token, "GET", "/users/alice").json()["servers"][""]["ready"], 60,
               what="the hub to see the server ready")


def test_egress_off_means_no_proxy_and_pip_says_so(stack, bob_token, docker_client):
    stop_server(stack, bob_token, "bob")
    stack.recreate_hub(EGRESS="off")
    try:
        start_server(stack, bob_token, "bob")
        container = user_container(docker_client, "bob")
        env = exec_out(container, ["env"])
        assert "_PROXY=" not in env.upper() and "DEVHUB_EGRESS=off" in env
        pip = container.exec_run(["pip", "install", f"{PACKAGE}=={VERSION}"])
        text = pip.output.decode()
        assert pip.exit_code == 1 and "devhub-internet-egress-is-disabled" in text, text
        curl = container.exec_run(["curl", "-sS", "--max-time", "20", "--proxy", "http://egress:3128", "http://pypi.org/"])
        assert curl.exit_code in (5, 6, 7) and re.search(r"Could not resolve proxy|Failed to connect", curl.output.decode()), curl.output
        stop_server(stack, bob_token, "bob")
    finally:
        stack.recreate_hub()
