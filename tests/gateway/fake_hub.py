"""JupyterHub's API as the SSH gateway uses it, served over real HTTP from a thread: the keys and
route endpoints of the devhub service, POST /users/{name}/server, its progress event stream and
POST /users/{name}/activity. Shared by the unit tests of HubRouter and the gateway container tests
in hub mode."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "gateway-secret-token"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnaMUWxl4K5yNfR5FS5HewqBN2TxKX5PW48XFwAS6Uy"


class FakeHub:
    """`keys`: user -> key lines; `routes`: user -> route dict (default jupyter-{name}:2222);
    `running`: users whose server runs; `fail_start`: users whose start fails; `slow`: users whose
    start stays pending (progress stream open) until `release` is set; `refused`: user -> why the
    hub refuses them SSH now (403 on keys, with the keys, and on route); `expired`: users whose
    start the hub refuses because their login expired; `stops`: user -> the route's last_stop
    ({"reason", "by", "at"}) of a stopped server; stop() stops one with a stop under way for a few
    answers. `named`: user -> the named servers they have (created, running or not); a named server
    is "user/server" in `running`, `fail_start` and `routes`."""

    def __init__(self, host: str = "127.0.0.1"):
        self.keys = {"alice": ["ssh-ed25519 AAAA-alice"], "carol": ["ssh-ed25519 AAAA-carol"]}
        self.routes: dict[str, dict] = {}
        self.running = {"alice"}
        self.fail_start: set[str] = set()
        self.slow: set[str] = set()
        self.refused: dict[str, str] = {}
        self.expired: set[str] = set()
        self.stops: dict[str, dict] = {}
        self.stopping: dict[str, list] = {}  # user -> [route answers still saying stop_pending, last_stop after]
        self.named: dict[str, set[str]] = {}
        self.release = threading.Event()
        self.calls: list[tuple[str, str, dict | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _auth(self) -> bool:
                if self.headers.get("Authorization") != f"token {TOKEN}":
                    self._send(403, {"message": "bad token"})
                    return False
                return True

            def _progress(self, name: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

                def event(data: dict) -> None:
                    self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()

                event({"progress": 10, "message": "Pulling image"})
                if name in hub.slow:
                    hub.release.wait(120)
                event({"progress": 50, "message": "Starting"})
                if name in hub.fail_start:
                    event({"progress": 100, "failed": True, "message": "out of GPUs"})
                else:
                    hub.running.add(name)
                    event({"progress": 100, "ready": True, "message": "Server ready"})

            def do_GET(self):
                hub.calls.append(("GET", self.path, None))
                if not self._auth():
                    return
                parts = self.path.split("/")  # ['', 'hub', 'api', ...]
                if self.path.startswith("/hub/api/devhub/ssh/users/"):
                    name, what = parts[6], parts[7]
                    if name not in hub.keys:
                        return self._send(404, {"message": "no such user"})
                    if what == "servers":  # a named server's route: /users/{name}/servers/{server}/route
                        server = parts[8]
                        if server not in hub.named.get(name, set()):
                            return self._send(404, {"status": 404, "unknown_server": True,
                                                    "message": f"{name} has no server named {server!r}"})
                        name = f"{name}/{server}"
                    if name in hub.refused:
                        return self._send(403, {"message": f"SSH refused: {hub.refused[name]}",
                                                "ssh_refused": hub.refused[name], "keys": hub.keys[name]})
                    if what == "keys":
                        return self._send(200, {"keys": hub.keys[name]})
                    if name not in hub.running:
                        pending = name in hub.stopping and hub.stopping[name][0] > 0
                        if pending:
                            hub.stopping[name][0] -= 1
                        elif name in hub.stopping:
                            hub.stops[name] = hub.stopping.pop(name)[1]
                        if hub.stops.get(name) is None:
                            hub.stops.pop(name, None)
                        body = {"status": 409, "message": "server not running", "stop_pending": pending}
                        if name in hub.stops:
                            body["last_stop"] = hub.stops[name]
                        return self._send(409, body)
                    return self._send(200, hub.routes.get(name) or
                                      {"host": f"jupyter-{name.replace('/', '-')}", "port": 2222, "host_key": HOST_KEY})
                if self.path.endswith("/server/progress"):
                    return self._progress(parts[4])
                if self.path.endswith("/progress") and parts[5] == "servers":
                    return self._progress(f"{parts[4]}/{parts[6]}")
                self._send(404, {"message": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = json.loads(raw) if raw else None  # None: no body (the hub reuses the last options)
                hub.calls.append(("POST", self.path, body))
                if not self._auth():
                    return
                if self.path.split("/")[5:6] == ["servers"]:
                    return self._send(202, {})
                if self.path.endswith("/server"):
                    if self.path.split("/")[4] in hub.expired:
                        return self._send(403, {"message": f"auth has expired for {self.path.split('/')[4]}, login again"})
                    return self._send(202, {})
                if self.path.endswith("/activity"):
                    return self._send(204)
                self._send(404, {"message": "not found"})

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self, name: str, last_stop: dict | None, pending_answers: int = 0) -> None:
        """Stop `name`'s server: the route answers stop_pending `pending_answers` times (while the
        last_stop of an earlier stop may still be there), then `last_stop` (None: the hub does not know)."""
        self.running.discard(name)
        self.stopping[name] = [pending_answers, last_stop]

    def gets(self, suffix: str) -> list[str]:
        return [path for method, path, _ in self.calls if method == "GET" and path.endswith(suffix)]

    def posts(self, suffix: str) -> list[str]:
        return [path for method, path, _ in self.calls if method == "POST" and path.endswith(suffix)]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
