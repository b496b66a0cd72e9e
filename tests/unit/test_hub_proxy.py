"""devhub.proxy and devhub.health: the proxy service gets the hub's token; health checks answer."""

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

from devhub import health, secrets

ROOT = Path(__file__).resolve().parents[2]


def run_proxy(tmp_path, *args, **env):
    # Stand-in for configurable-http-proxy (external program): report what it was started with.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    chp = bin_dir / "configurable-http-proxy"
    chp.write_text('#!/bin/sh\necho "token=$CONFIGPROXY_AUTH_TOKEN"\necho "args=$*"\n')
    chp.chmod(0o755)
    full = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT / "hub"), **env}
    return subprocess.run([sys.executable, "-m", "devhub.proxy", *args], env=full, capture_output=True,
                          text=True, timeout=60)


def test_proxy_shares_the_hubs_token(tmp_path):
    token_file = tmp_path / "secret" / "auth_token"
    hub = secrets.load(tmp_path / "data", token_file, env={})
    result = run_proxy(tmp_path, "--port=8000", PROXY_AUTH_TOKEN_FILE=str(token_file))
    assert result.returncode == 0, result.stderr
    assert f"token={hub.proxy_auth_token}\n" in result.stdout
    assert hub.proxy_auth_token not in result.stdout.split("args=")[1]  # never on the command line
    assert "args=--port=8000" in result.stdout


def test_proxy_first_creates_token_hub_reads_it(tmp_path):
    token_file = tmp_path / "secret" / "auth_token"
    result = run_proxy(tmp_path, PROXY_AUTH_TOKEN_FILE=str(token_file))
    assert result.returncode == 0, result.stderr
    assert "args=--ip=0.0.0.0 --api-ip=0.0.0.0 --port=8000 --api-port=8001" in result.stdout
    hub = secrets.load(tmp_path / "data", token_file, env={})
    assert f"token={hub.proxy_auth_token}\n" in result.stdout
    assert os.stat(token_file).st_mode & 0o777 == 0o600


def test_proxy_routes_on_host_unless_path_routing(tmp_path):
    token_file = str(tmp_path / "auth_token")
    subdomains = run_proxy(tmp_path, PROXY_AUTH_TOKEN_FILE=token_file)
    path = run_proxy(tmp_path, PROXY_AUTH_TOKEN_FILE=token_file, SERVER_ROUTING="path")
    assert subdomains.stdout.rstrip().endswith("--no-x-forward --host-routing"), subdomains.stdout
    assert path.returncode == 0 and "--host-routing" not in path.stdout and "--no-x-forward" in path.stdout


def test_proxy_listens_where_its_names_resolve(tmp_path):
    token_file = str(tmp_path / "auth_token")
    both = run_proxy(tmp_path, PROXY_AUTH_TOKEN_FILE=token_file, PROXY_LISTEN_HOST="localhost",
                     PROXY_API_LISTEN_HOST="localhost")
    assert "args=--ip=127.0.0.1 --api-ip=127.0.0.1 --port=8000" in both.stdout, both.stdout
    bad = run_proxy(tmp_path, PROXY_AUTH_TOKEN_FILE=token_file, PROXY_API_LISTEN_HOST="no-such-host.invalid")
    assert bad.returncode == 2 and "PROXY_API_LISTEN_HOST='no-such-host.invalid' does not resolve" in bad.stderr


def test_proxy_refuses_bad_token_file(tmp_path):
    token_file = tmp_path / "auth_token"
    token_file.write_text("x")
    token_file.chmod(0o666)
    result = run_proxy(tmp_path, PROXY_AUTH_TOKEN_FILE=str(token_file))
    assert result.returncode == 2
    assert f"devhub.proxy: secret file {token_file} has mode 666" in result.stderr


def test_health():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert health.check(base + "/ok")
        assert not health.check(base + "/down")
        assert not health.check("http://127.0.0.1:1/")
    finally:
        server.shutdown()
