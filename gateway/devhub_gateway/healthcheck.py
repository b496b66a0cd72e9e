"""HEALTHCHECK: the gateway accepts TCP on GATEWAY_PORT and answers with an SSH-2.0 banner."""

from __future__ import annotations

import socket
import sys

from .config import ConfigError, only


def main() -> int:
    try:
        port = only("GATEWAY_PORT")["port"]
    except ConfigError as exc:
        print(f"unhealthy: {exc}")
        return 1
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.settimeout(3)
            banner = s.recv(256)
    except OSError as exc:
        print(f"unhealthy: {exc}")
        return 1
    if not banner.startswith(b"SSH-2.0-"):
        print(f"unhealthy: unexpected banner {banner[:40]!r}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
