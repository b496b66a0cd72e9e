"""The TLS front door of the running stack: Mozilla intermediate, redirects, HSTS, limits."""

import base64
import ssl

import requests

from stack_support import start_server
from tls_check import check_mozilla_intermediate


def test_sslyze_mozilla_intermediate(stack, tmp_path):
    served = tmp_path / "served.pem"
    served.write_text(ssl.get_server_certificate(("127.0.0.1", stack.https_port)))
    scan = check_mozilla_intermediate(stack.https_port, served)  # raises on any deviation
    assert scan.tls_1_3_cipher_suites.result.is_tls_version_supported
    assert not scan.tls_1_1_cipher_suites.result.is_tls_version_supported


def test_http_redirects_to_https_with_hsts(stack):
    plain = requests.get(f"http://localhost:{stack.http_port}/hub/login?x=1", allow_redirects=False, timeout=10)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://localhost:{stack.https_port}/hub/login?x=1"
    secure = requests.get(f"{stack.url}/hub/login", verify=False, timeout=10)
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=63072000")


def test_100mb_upload_through_nginx_to_the_users_server(stack, alice_token):
    start_server(stack, alice_token, "alice")
    size = 100 * 1024 * 1024

    def body():
        chunk = b"x" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            yield chunk

    # The Jupyter contents API takes base64 in JSON; the raw bytes go to a file through a terminal-less
    # path: the server's upload endpoint used by JupyterLab (chunked contents PUT) for large files.
    url = f"{stack.server_url('alice')}/api/contents/upload.bin"
    headers = {"Authorization": f"token {alice_token}"}
    chunk_size = 25 * 1024 * 1024
    data = b"".join(body())
    for number, start in enumerate(range(0, size, chunk_size), start=1):
        last = start + chunk_size >= size
        payload = {"type": "file", "format": "base64", "chunk": -1 if last else number,
                   "content": base64.b64encode(data[start:start + chunk_size]).decode()}
        response = requests.put(url, json=payload, headers=headers, verify=False, timeout=300)
        assert response.status_code in (200, 201), response.text[:300]
    model = requests.get(url, params={"content": "0"}, headers=headers, verify=False, timeout=60).json()
    assert model["size"] == size


def test_oversized_headers_get_a_clean_4xx_and_the_hub_stays_up(stack):
    big = requests.get(f"{stack.url}/hub/login", headers={"Cookie": "a=" + "x" * 65536}, verify=False, timeout=10)
    assert 400 <= big.status_code < 500
    assert requests.get(f"{stack.url}/hub/health", verify=False, timeout=10).status_code == 200


def test_every_login_cookie_is_secure_and_http_only(stack, alice):
    """Cookies of the hub and of the user's server never travel over plain HTTP (JupyterHub sets
    Secure only when it sees https: X-Forwarded-Proto must reach it as nginx sent it)."""
    start_server(stack, alice.token(), "alice")
    lab = alice.session.get(f"{stack.server_url('alice')}/lab", timeout=60)  # OAuth with the hub sets the server's cookie
    assert lab.status_code == 200 and "/user/alice/lab" in lab.url
    cookies = {c.name: c for c in alice.session.cookies}
    for name in ("jupyterhub-hub-login", "jupyterhub-session-id", "jupyterhub-user-alice"):
        assert name in cookies, sorted(cookies)
    insecure = [c.name for c in alice.session.cookies if c.name.startswith("jupyterhub") and not c.secure]
    assert insecure == [], insecure
    assert all(c.has_nonstandard_attr("HttpOnly") for c in alice.session.cookies if c.name.startswith("jupyterhub")), \
        [(c.name, c._rest) for c in alice.session.cookies]


def test_another_identity_renamed_to_alice_is_refused(stack, alice):
    """The demo IdP's "impostor" is another subject whose changeable name claim says alice: alice's
    account (pinned at her first login) stays hers."""
    session = requests.Session()
    session.verify, session.trust_env = False, False
    page = session.get(f"{stack.url}/hub/oauth_login?next=", timeout=30)
    refused = session.post(page.url, data={"sub": "impostor"}, timeout=60)
    assert refused.status_code == 403, (refused.status_code, refused.url)
    assert "belongs to another demo identity" in refused.text
    assert "jupyterhub-hub-login" not in session.cookies.keys()
    assert stack.login("alice").api("GET", "/user").json()["name"] == "alice"  # the owner still gets in
