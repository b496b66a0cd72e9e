"""Stand-in for configurable-http-proxy behind devhub/nginx in the tests (standard library only,
Python 3.9+; run inside a container with `python3 -c <this file> PORT`).

- GET/HEAD/other: 200 with JSON {method, path, headers} of the request as it arrived here; a path
  under /service-worker/ also answers `Service-Worker-Allowed: /` (what a hostile user server could).
- POST/PUT: streams the body (Content-Length or chunked) without keeping it, answers
  {received: byte count, sha256: digest, ...}.
- GET with `Upgrade: websocket`: completes the RFC 6455 handshake, sends the request info as a
  first text message, then echoes every data frame until a close frame.
"""

import base64
import hashlib
import json
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(stream):
    b1, b2 = read_exact(stream, 2)
    length = b2 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", read_exact(stream, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", read_exact(stream, 8))
    mask = read_exact(stream, 4) if b2 & 0x80 else b"\0\0\0\0"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(read_exact(stream, length)))
    return b1 & 0x0F, payload


def send_frame(stream, opcode, payload):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    stream.write(head + payload)
    stream.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def info(self):
        return {"method": self.command, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()}}

    def reply(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/service-worker/"):
            self.send_header("Service-Worker-Allowed", "/")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body_chunks(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield from self.read_exactly(size)
                self.rfile.readline()
        yield from self.read_exactly(int(self.headers.get("Content-Length") or 0))

    def read_exactly(self, size):
        """`size` bytes of the body in chunks of at most 1 MiB (never all in memory)."""
        remaining = size
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                raise EOFError
            remaining -= len(chunk)
            yield chunk

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        self.reply(self.info())

    do_HEAD = do_DELETE = do_OPTIONS = do_PATCH = do_GET

    def do_POST(self):
        digest, received = hashlib.sha256(), 0
        for chunk in self.body_chunks():
            digest.update(chunk)
            received += len(chunk)
        self.reply({**self.info(), "received": received, "sha256": digest.hexdigest()})

    do_PUT = do_POST

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        send_frame(self.wfile, 0x1, json.dumps(self.info()).encode())
        self.close_connection = True
        try:
            while True:
                opcode, payload = read_frame(self.rfile)
                if opcode == 0x8:
                    send_frame(self.wfile, 0x8, payload[:2])
                    return
                if opcode == 0x9:
                    send_frame(self.wfile, 0xA, payload)
                elif opcode in (0x1, 0x2):
                    send_frame(self.wfile, opcode, payload)
        except (EOFError, ConnectionError):
            return


if __name__ == "__main__":
    server = ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 8000), Handler)
    server.daemon_threads = True
    server.serve_forever()
