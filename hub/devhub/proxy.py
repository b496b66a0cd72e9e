"""Start configurable-http-proxy with the shared auth token (the `proxy` service's command).

    python -m devhub.proxy [configurable-http-proxy options...]

SERVER_ROUTING (subdomain, the default, or path) must match the hub's: it decides --host-routing.
PROXY_LISTEN_HOST and PROXY_API_LISTEN_HOST: names resolved to the addresses it listens on.

CONFIGPROXY_AUTH_TOKEN is taken from the environment when set, else read from (or, when the proxy
starts before the hub, created in) PROXY_AUTH_TOKEN_FILE (default /srv/proxy-secret/auth_token, a
volume shared with the hub only). The token is passed through the environment, never argv.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from typing import Mapping

import devhub_env

from . import secrets, settings

DEFAULT_ARGS = [
    "--port=8000",
    "--api-port=8001",
    "--error-target=http://hub:8081/hub/error",
    # nginx sets X-Forwarded-Proto/For; appending ours ("https,http") would make tornado see http and
    # JupyterHub and user servers drop the Secure flag from their cookies.
    "--no-x-forward",
]


def listen_address(host: str, var: str) -> str:
    """The address `host` (the setting `var`) resolves to: in compose, an alias the proxy has on one
    network only, so it listens there and not on the user networks it joins to reach servers; all without it."""
    if not host:
        return "0.0.0.0"
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        print(f"devhub.proxy: {var}={host!r} does not resolve ({exc})", file=sys.stderr)
        sys.exit(2)


OWN_SETTINGS = ("SERVER_ROUTING", "PROXY_LISTEN_HOST", "PROXY_API_LISTEN_HOST", "PROXY_AUTH_TOKEN_FILE")


def own_settings(env: Mapping[str, str]) -> dict:
    """The proxy's few settings, from the hub's table (devhub.settings), or exit saying which is bad."""
    try:
        return devhub_env.read_only(settings.TABLE, OWN_SETTINGS, env)
    except devhub_env.SettingError as exc:
        print(f"devhub.proxy: {exc}", file=sys.stderr)
        sys.exit(2)


def default_args(own: dict) -> list[str]:
    """DEFAULT_ARGS: the proxy port on PROXY_LISTEN_HOST (nginx's network), the API on
    PROXY_API_LISTEN_HOST (the hub's), routing on the Host header too unless SERVER_ROUTING=path
    (the hub's routes are then "alice.<host>/user/alice/"); `own`: own_settings()."""
    return [f"--ip={listen_address(own['proxy_listen_host'], 'PROXY_LISTEN_HOST')}",
            f"--api-ip={listen_address(own['proxy_api_listen_host'], 'PROXY_API_LISTEN_HOST')}",
            *DEFAULT_ARGS, *([] if own["server_routing"] == "path" else ["--host-routing"])]


def main(args: list[str]) -> None:
    # configurable-http-proxy's own variable, passed through when set (its documented interface)
    own = own_settings(os.environ)
    token = os.environ.get("CONFIGPROXY_AUTH_TOKEN", "").strip()
    if not token:
        try:
            token = secrets.read_or_create(own["proxy_auth_token_file"])
        except (OSError, secrets.SecretError) as exc:
            print(f"devhub.proxy: {exc}", file=sys.stderr)
            sys.exit(2)
    env = dict(os.environ, CONFIGPROXY_AUTH_TOKEN=token)
    chp = shutil.which("configurable-http-proxy") or "configurable-http-proxy"
    os.execvpe(chp, [chp, *(args or default_args(own))], env)


if __name__ == "__main__":
    main(sys.argv[1:])
