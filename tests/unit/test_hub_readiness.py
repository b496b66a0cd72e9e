"""devhub.readiness against a real local HTTP server: the spawner's prompt check that a new server
answers, by JupyterHub's rule (any answer below 500), before JupyterHub's own backoff."""

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devhub import readiness
from support import free_port


class Booting(ThreadingHTTPServer):
    """Answers 503 to the first `busy` requests (a proxy in front of a server still starting), then `status`."""

    def __init__(self, busy: int, status: int = 200):
        self.busy, self.status, self.paths = busy, status, []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805 - the server is `self` here
                self.paths.append(handler.path)
                code = 503 if len(self.paths) <= self.busy else self.status
                handler.send_response(code)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/user/alice/api"


@pytest.mark.parametrize("status", [200, 404, 302])
def test_returns_once_the_server_answers_below_500(status):
    server = Booting(busy=3, status=status)
    try:
        asyncio.run(readiness.wait_until_answering(server.url, timeout=30, interval=0.01))
        assert len(server.paths) == 4 and set(server.paths) == {"/user/alice/api"}
    finally:
        server.shutdown()


def test_keeps_asking_while_nothing_listens_then_gives_up_saying_where():
    url = f"http://127.0.0.1:{free_port()}/user/alice/api"
    with pytest.raises(readiness.NotAnswering, match=rf"did not answer at {url} within 0.3 s"):
        asyncio.run(readiness.wait_until_answering(url, timeout=0.3, interval=0.01))


def test_a_server_that_only_fails_is_not_ready():
    server = Booting(busy=10**6)
    try:
        with pytest.raises(readiness.NotAnswering):
            asyncio.run(readiness.wait_until_answering(server.url, timeout=0.3, interval=0.01))
        assert len(server.paths) >= 2  # it asked again, not once
    finally:
        server.shutdown()
