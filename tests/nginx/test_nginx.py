"""devhub/nginx, the TLS front door, with real containers.

A stand-in for configurable-http-proxy (tests/nginx/upstream.py, standard library only, run with the
user image's python3) sits on a user-defined network created here; nginx reaches it by container
name through UPSTREAM, as it reaches `proxy:8000` in the compose stack. Ports are published on
127.0.0.1 only, with Docker-assigned host ports. Everything created is named devhub-h2-*.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import socket
import ssl
import struct
import subprocess
from pathlib import Path

import docker
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tls_check import check_mozilla_intermediate
from support import LABEL, TrackedResources, exec_out, host_port, unique, wait_healthy, wait_until

NGINX_IMAGE = os.environ.get("DEVHUB_NGINX_IMAGE", "devhub/nginx:latest")
ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_SOURCE = (Path(__file__).parent / "upstream.py").read_text()
PUBLIC_HTTPS_PORT = 9443  # what HTTPS_PORT says the public port is; redirects and X-Forwarded-Port use it
MiB = 1 << 20

# How compose runs it: read-only root, only /tmp writable (tmpfs), no capabilities. /tmp is kept
# smaller than the 100 MB upload below, which therefore must stream through, never be spooled.
HARDENED = dict(
    read_only=True,
    tmpfs={"/tmp": "rw,nosuid,nodev,noexec,size=32m"},
    cap_drop=["ALL"],
    security_opt=["no-new-privileges"],
    pids_limit=256,
)
PORTS = {"8443/tcp": ("127.0.0.1", None), "8080/tcp": ("127.0.0.1", None)}


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def nginx_image(docker_client) -> str:
    docker_client.images.get(NGINX_IMAGE)  # raises ImageNotFound: run `make image-nginx`
    return NGINX_IMAGE


class Stack:
    """A user-defined network with the upstream on it; containers on it are removed before it."""

    def __init__(self, client: docker.DockerClient, upstream_image: str):
        self.client = client
        self.tracked = TrackedResources(client)
        self.network = client.networks.create(unique("devhub-h2-nginx-net"), driver="bridge", labels={LABEL: "1"})
        self.upstream_name = unique("devhub-h2-nginx-upstream")
        self.upstream = self.tracked.run(
            upstream_image,
            name=self.upstream_name,
            entrypoint=["python3", "-c", UPSTREAM_SOURCE, "8000"],
            command=[],
            network=self.network.name,
            healthcheck={"test": ["NONE"]},
            user="1000:100",
        )

    def close(self) -> None:
        self.tracked.cleanup()
        self.network.remove()


@pytest.fixture(scope="module")
def stack(docker_client, image):
    stack = Stack(docker_client, image)
    try:
        yield stack
    finally:
        stack.close()


def start_nginx(tracked: TrackedResources, nginx_image: str, network: str | None = None, wait: bool = True,
                environment: dict | None = None, **kwargs):
    options = dict(HARDENED)
    options.update(kwargs)
    container = tracked.run(
        nginx_image,
        name=unique("devhub-h2-nginx"),
        environment=environment or {},
        network=network,
        ports=PORTS,
        **options,
    )
    if wait:
        wait_healthy(container, timeout=60)
    return container


class Front:
    def __init__(self, container, cert_file: Path):
        self.container = container
        self.cert_file = cert_file

    @property
    def https_port(self) -> int:
        return host_port(self.container, "8443/tcp")

    @property
    def http_port(self) -> int:
        return host_port(self.container, "8080/tcp")

    def url(self, path: str = "/") -> str:
        return f"https://localhost:{self.https_port}{path}"

    def get(self, path: str = "/", **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.get(self.url(path), verify=str(self.cert_file), **kwargs)

    def tls_socket(self) -> ssl.SSLSocket:
        return tls_connect(self.https_port, self.cert_file)


def served_cert_file(container, directory: Path, path: str = "/var/lib/devhub-tls/tls.crt") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{container.name}.crt"
    out.write_text(exec_out(container, ["cat", path]))
    return out


@pytest.fixture(scope="module")
def front(stack, nginx_image, tmp_path_factory) -> Front:
    """The front door as compose runs it, in front of the stand-in proxy, with a generated certificate."""
    volume = stack.tracked.volume("devhub-h2-nginx-tls")
    container = start_nginx(
        stack.tracked, nginx_image, network=stack.network.name,
        environment={"UPSTREAM": f"{stack.upstream_name}:8000", "HTTPS_PORT": str(PUBLIC_HTTPS_PORT)},
        volumes={volume: {"bind": "/var/lib/devhub-tls", "mode": "rw"}},
    )
    result = Front(container, served_cert_file(container, tmp_path_factory.mktemp("front")))
    wait_until(lambda: result.get("/ready").status_code == 200, 60, what="the upstream to answer through nginx")
    return result


# ---------------------------------------------------------------------------------------------
# helpers


def tls_connect(port: int, cafile: Path, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(cafile))
    context.set_alpn_protocols(list(alpn))
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    return context.wrap_socket(sock, server_hostname="localhost")


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read an HTTP/1.1 response head: (status, lower-cased headers, bytes already read past it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a full response head: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


class WsReader:
    def __init__(self, sock: socket.socket, buffered: bytes):
        self.sock, self.buffer = sock, buffered

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("websocket closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def frame(self) -> tuple[int, bytes]:
        b1, b2 = self.read(2)
        length = b2 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.read(8))
        assert not b2 & 0x80, "server frames must not be masked"
        return b1 & 0x0F, self.read(length)


def ws_send(sock: socket.socket, opcode: int, payload: bytes) -> None:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


class StreamedBody:
    """`size` pseudo-random bytes produced 1 MiB at a time (requests sends it with Content-Length)."""

    def __init__(self, size: int):
        self.size = size
        self.digest = hashlib.sha256()

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        block = hashlib.sha256(b"devhub").digest() * (MiB // 32)
        sent = 0
        while sent < self.size:
            chunk = block[: min(MiB, self.size - sent)]
            block = block[1:] + block[:1]  # vary the content so the digest checks order too
            self.digest.update(chunk)
            sent += len(chunk)
            yield chunk


def make_cert(directory: Path, key_kind: str, common_name: str) -> tuple[Path, Path]:
    key = rsa.generate_private_key(65537, 2048) if key_kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name), x509.DNSName("localhost")]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    crt, key_file = directory / "tls.crt", directory / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    # nginx runs as www-data (uid 33): a mounted key must be readable by it (test-only: world-readable).
    crt.chmod(0o644)
    key_file.chmod(0o644)
    return crt, key_file


def peer_certificate(port: int) -> x509.Certificate:
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return x509.load_pem_x509_certificate(pem.encode())


def wait_exited(container, timeout: float = 30) -> int:
    def exited():
        container.reload()
        return container.status == "exited"

    wait_until(exited, timeout, what=f"{container.name} to exit")
    return container.attrs["State"]["ExitCode"]


# ---------------------------------------------------------------------------------------------
# image


def test_hadolint_is_clean(venv_bin):
    result = subprocess.run([str(venv_bin / "hadolint"), "nginx/Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_unprivileged_on_a_read_only_root(front):
    status = exec_out(front.container, ["cat", "/proc/1/status"])
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["33"] * 4, uid_line  # www-data, real/effective/saved/fs
    assert front.container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    code, _ = front.container.exec_run(["touch", "/etc/nginx/x"])
    assert code != 0


# ---------------------------------------------------------------------------------------------
# TLS certificate


def test_generated_certificate_is_ecdsa_p256_for_server_name(front):
    cert = peer_certificate(front.https_port)
    assert cert.public_bytes(serialization.Encoding.PEM) == front.cert_file.read_bytes()
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert set(san.get_values_for_type(x509.IPAddress)) >= {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 366  # Mozilla's maximum lifetime
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca  # a leaf, not a CA
    # Python's verifying client accepts it for "localhost" once told to trust it.
    assert front.get("/").status_code == 200
    assert exec_out(front.container, ["stat", "-c", "%a %U", "/var/lib/devhub-tls/tls.key"]).strip() == "600 www-data"
    logs = front.container.logs().decode(errors="replace")
    assert "PRIVATE KEY" not in logs and "generating a self-signed" in logs


def test_certificate_persists_on_the_volume_and_follows_server_name(resources, nginx_image, tmp_path):
    volume = resources.volume("devhub-h2-nginx-tls")
    mount = {volume: {"bind": "/var/lib/devhub-tls", "mode": "rw"}}

    first = start_nginx(resources, nginx_image, volumes=mount)
    fingerprint = peer_certificate(host_port(first, "8443/tcp")).fingerprint(hashes.SHA256())
    # Default HTTPS_PORT=443: the redirect names no port.
    response = requests.get(f"http://127.0.0.1:{host_port(first, '8080/tcp')}/hub/?a=1", allow_redirects=False,
                            headers={"Host": "devhub.example"}, timeout=10)
    assert (response.status_code, response.headers["Location"]) == (301, "https://devhub.example/hub/?a=1")
    # No proxy behind it (UPSTREAM defaults to proxy:8000): still healthy, a clean 502 for proxied paths.
    assert Front(first, served_cert_file(first, tmp_path)).get("/").status_code == 502
    resources.remove_container(first)

    second = start_nginx(resources, nginx_image, volumes=mount)
    assert peer_certificate(host_port(second, "8443/tcp")).fingerprint(hashes.SHA256()) == fingerprint
    assert "reusing the self-signed certificate" in second.logs().decode(errors="replace")
    resources.remove_container(second)

    third = start_nginx(resources, nginx_image, volumes=mount, environment={"SERVER_NAME": "devhub.example.org"})
    cert = peer_certificate(host_port(third, "8443/tcp"))
    assert cert.fingerprint(hashes.SHA256()) != fingerprint
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"devhub.example.org", "*.devhub.example.org"} <= set(san.get_values_for_type(x509.DNSName))


def test_mounted_certificate_is_used(resources, nginx_image, tmp_path):
    crt, _ = make_cert(tmp_path / "tls", "rsa", "mounted.example")
    container = start_nginx(resources, nginx_image, volumes={str(tmp_path / "tls"): {"bind": "/etc/devhub/tls", "mode": "ro"}})
    port = host_port(container, "8443/tcp")
    assert peer_certificate(port).public_bytes(serialization.Encoding.PEM) == crt.read_bytes()
    with tls_connect(port, crt) as sock:  # verifies against the mounted certificate, for "localhost"
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
    assert "using the mounted certificate" in container.logs().decode(errors="replace")


def test_half_mounted_certificate_is_a_clear_error(resources, nginx_image, tmp_path):
    crt, key = make_cert(tmp_path / "tls", "ecdsa", "mounted.example")
    key.unlink()
    container = start_nginx(resources, nginx_image, wait=False,
                            volumes={str(tmp_path / "tls"): {"bind": "/etc/devhub/tls", "mode": "ro"}})
    assert wait_exited(container) != 0
    assert "tls.key is missing" in container.logs().decode(errors="replace")


@pytest.mark.parametrize(
    "environment, message",
    [
        ({"HTTPS_PORT": "https"}, "HTTPS_PORT='https' must be an integer port"),
        ({"HTTPS_PORT": "70000"}, "HTTPS_PORT='70000' must be an integer port"),
        ({"UPSTREAM": "proxy"}, "UPSTREAM='proxy' must be HOST:PORT"),
        ({"UPSTREAM": "proxy:8000; return 200"}, "UPSTREAM='proxy:8000; return 200' must be HOST:PORT"),
        ({"DEMO_IDP_UPSTREAM": "oidc:x"}, "DEMO_IDP_UPSTREAM='oidc:x' must be HOST:PORT"),
        ({"SERVER_NAME": "bad name"}, "SERVER_NAME='bad name' must be a DNS name"),
    ],
)
def test_invalid_environment_is_a_clear_error(resources, nginx_image, environment, message):
    container = start_nginx(resources, nginx_image, wait=False, environment=environment)
    assert wait_exited(container) != 0
    assert message in container.logs().decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# HTTP behaviour


def test_http_redirects_to_https_keeping_host_and_path(front):
    response = requests.get(f"http://127.0.0.1:{front.http_port}/hub/oauth_callback?code=a%2Fb&state=1",
                            headers={"Host": "devhub.example:8080"}, allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://devhub.example:{PUBLIC_HTTPS_PORT}/hub/oauth_callback?code=a%2Fb&state=1"


def test_hsts_on_every_https_response_and_no_version(front):
    for path, status in [("/hub/login", 200), ("/demo-idp/", 404)]:
        response = front.get(path)
        assert response.status_code == status
        assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
        assert response.headers["Server"] == "nginx"  # server_tokens off: no version


def test_forwarded_headers_reach_the_upstream(front):
    response = front.get("/user/alice/api/contents/a%2Fb?x=1", headers={"X-Forwarded-For": "6.6.6.6",
                                                                         "X-Forwarded-Proto": "http"})
    seen = response.json()
    headers = seen["headers"]
    public = f"localhost:{front.https_port}"
    assert seen["path"] == "/user/alice/api/contents/a%2Fb?x=1"  # passed on unchanged (no decoding)
    assert headers["host"] == public  # with its port, so OAuth callbacks are built for https://host:port
    assert headers["x-forwarded-host"] == public
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-port"] == str(PUBLIC_HTTPS_PORT)
    # Client-sent forwarding headers are replaced, never trusted or appended to.
    assert headers["x-forwarded-for"] == headers["x-real-ip"]
    assert "6.6.6.6" not in headers["x-forwarded-for"]
    ipaddress.ip_address(headers["x-real-ip"])


def test_demo_idp_location_absent_without_demo_idp_upstream(front):
    response = front.get("/demo-idp/.well-known/openid-configuration")
    assert response.status_code == 404
    assert "application/json" not in response.headers.get("Content-Type", "")  # nginx's own, not proxied


def test_demo_idp_proxied_when_configured(resources, stack, nginx_image, tmp_path):
    container = start_nginx(
        resources, nginx_image, network=stack.network.name,
        environment={"UPSTREAM": "proxy.invalid:8000", "DEMO_IDP_UPSTREAM": f"{stack.upstream_name}:8000"},
    )
    front = Front(container, served_cert_file(container, tmp_path))
    response = wait_until(lambda: (r := front.get("/demo-idp/.well-known/openid-configuration?a=1")).ok and r,
                          30, what="the demo IdP through nginx")
    seen = response.json()
    assert seen["path"] == "/.well-known/openid-configuration?a=1"  # the /demo-idp prefix is stripped
    assert seen["headers"]["x-forwarded-proto"] == "https"
    assert front.get("/hub/").status_code == 502  # the (absent) proxy is still the default route


def test_users_origins_under_a_localhost_name(resources, stack, nginx_image, tmp_path):
    """SERVER_NAME=devhub.localhost (compose's default): the certificate covers users' own origins,
    https://localhost/ leads to the stack's name, and no upstream can widen a service worker's scope."""
    container = start_nginx(resources, nginx_image, network=stack.network.name,
                            environment={"UPSTREAM": f"{stack.upstream_name}:8000", "SERVER_NAME": "devhub.localhost"})
    cert_file = served_cert_file(container, tmp_path)
    port = host_port(container, "8443/tcp")
    context = ssl.create_default_context(cafile=str(cert_file))
    for name in ("devhub.localhost", "alice.devhub.localhost"):  # verified the way browsers do
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname=name) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    front = Front(container, cert_file)
    moved = front.get("/hub/login?next=%2F", allow_redirects=False)  # Host: localhost
    assert (moved.status_code, moved.headers["Location"]) == (301, "https://devhub.localhost/hub/login?next=%2F")
    served = wait_until(lambda: (r := front.get("/service-worker/sw.js", headers={"Host": "alice.devhub.localhost"})).ok and r,
                        30, what="the upstream through nginx")
    assert served.json()["headers"]["host"] == "alice.devhub.localhost"
    assert "service-worker-allowed" not in {k.lower() for k in served.headers}


def test_websocket_upgrade_and_echo(front):
    key = base64.b64encode(os.urandom(16)).decode()
    with front.tls_socket() as sock:
        sock.sendall(
            f"GET /user/alice/api/kernels/k1/channels HTTP/1.1\r\nHost: localhost:{front.https_port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nOrigin: https://localhost\r\n\r\n".encode()
        )
        status, headers, rest = read_head(sock)
        assert status == 101, (status, headers)
        assert headers["upgrade"].lower() == "websocket"
        expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        assert headers["sec-websocket-accept"] == expected.decode()

        reader = WsReader(sock, rest)
        opcode, payload = reader.frame()
        upstream_saw = json.loads(payload)["headers"]
        assert upstream_saw["upgrade"].lower() == "websocket"
        assert upstream_saw["connection"].lower() == "upgrade"
        assert upstream_saw["x-forwarded-proto"] == "https"

        for message in [b"hello kernel", os.urandom(70_000)]:
            opcode_out = 0x1 if message.isascii() else 0x2
            ws_send(sock, opcode_out, message)
            assert reader.frame() == (opcode_out, message)
        ws_send(sock, 0x8, struct.pack("!H", 1000))
        assert reader.frame()[0] == 0x8


def test_100_mb_upload_streams_through(front):
    body = StreamedBody(100 * MiB)
    response = requests.post(front.url("/user/alice/api/contents/big.bin"), data=body,
                             verify=str(front.cert_file), timeout=300)
    assert response.status_code == 200, response.text[:500]
    seen = response.json()
    assert seen["received"] == 100 * MiB
    assert seen["sha256"] == body.digest.hexdigest()
    assert seen["headers"]["content-length"] == str(100 * MiB)


def test_upload_over_512_mb_is_refused_with_413(front):
    with front.tls_socket() as sock:
        sock.sendall(
            f"POST /user/alice/api/contents/huge.bin HTTP/1.1\r\nHost: localhost:{front.https_port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {513 * MiB}\r\n\r\n".encode()
            + b"x" * 4096
        )
        status, headers, _ = read_head(sock)
    assert status == 413
    assert headers["strict-transport-security"] == "max-age=63072000"
    assert front.get("/after-413").status_code == 200


def test_oversized_headers_get_a_clean_4xx_and_service_continues(front):
    response = front.get("/hub/home", headers={"Cookie": "jupyterhub-session=" + "a" * 64 * 1024})
    assert 400 <= response.status_code < 500 and response.status_code in (400, 431, 494), response.status_code
    response = front.get("/hub/home", headers={"X-Many": "b" * 10_000, "Cookie": "c=" + "d" * 10_000})
    assert response.status_code == 200  # large but within the limits: passed through
    assert front.get("/after-large-headers").status_code == 200


def test_health_check_listener_is_internal(front):
    # The health check uses its own loopback listener in the container; on the public port the
    # same path is just another request for the proxy.
    assert front.container.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "devhub-nginx-healthcheck"]
    assert front.get("/health").json()["path"] == "/health"
    exec_out(front.container, ["devhub-nginx-healthcheck"])


# ---------------------------------------------------------------------------------------------
# Mozilla intermediate


def test_sslyze_reports_mozilla_intermediate_compliance(front):
    scan = check_mozilla_intermediate(front.https_port, front.cert_file)
    assert scan.tls_1_3_cipher_suites.result.is_tls_version_supported
    assert scan.tls_1_2_cipher_suites.result.is_tls_version_supported
    assert not scan.tls_1_1_cipher_suites.result.is_tls_version_supported


def test_sslyze_mozilla_intermediate_with_a_mounted_rsa_certificate(resources, nginx_image, tmp_path):
    # An RSA certificate enables the DHE-RSA suites of Mozilla's list: they must use ffdhe2048.
    crt, _ = make_cert(tmp_path / "tls", "rsa", "mounted.example")
    container = start_nginx(resources, nginx_image, volumes={str(tmp_path / "tls"): {"bind": "/etc/devhub/tls", "mode": "ro"}})
    scan = check_mozilla_intermediate(host_port(container, "8443/tcp"), crt)
    accepted = {s.cipher_suite.name for s in scan.tls_1_2_cipher_suites.result.accepted_cipher_suites}
    assert "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256" in accepted and "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in accepted
