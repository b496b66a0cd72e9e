"""Container health check for the services run from the hub image (no curl in the image).

    python -m devhub.health URL     exit 0 when GET URL answers 2xx within 5 s, else 1

hub:   http://127.0.0.1:8081/hub/health
proxy: http://127.0.0.1:8000/_chp_healthz
oidc:  http://127.0.0.1:8080/.well-known/openid-configuration
"""

from __future__ import annotations

import sys
import urllib.request


def check(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local http only
            return 200 <= response.status < 300
    except OSError:
        return False


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m devhub.health URL")
    sys.exit(0 if check(sys.argv[1]) else 1)
