"""``python -m devhub_gateway``: read the environment, load or create the keys, serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from . import keys, wire
from .config import ConfigError, Settings, from_env
from .limits import raise_open_files_limit
from .router import Router, StaticRouter
from .listener import Gateway


def make_router(settings: Settings) -> Router:
    if settings.router == "static":
        return StaticRouter(settings.static_config)
    from .hub_router import HubRouter

    return HubRouter(settings.hub_api_url, settings.hub_api_token, start_timeout=settings.start_timeout,
                     max_requests=settings.hub_max_requests, public_url=settings.hub_public_url)


async def serve(settings: Settings) -> None:
    wire.drop_cbc_only_ignore_packets()
    soft, hard = raise_open_files_limit()
    host_key = keys.host_key(settings.state_dir)
    client_key = keys.client_key(settings.state_dir)
    gateway = Gateway(settings, make_router(settings), host_key, client_key)
    port = await gateway.start()
    logging.getLogger("devhub_gateway").info(
        "listening on %s:%d; host key %s; client key (give to user containers): %s; open files limit %d (hard %d); "
        "event loop %s", settings.listen or "*", port, host_key.get_fingerprint(), keys.public_line(client_key), soft, hard,
        type(asyncio.get_running_loop()).__module__.split(".")[0])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await gateway.close()


def run(main_coroutine) -> None:
    """Run on uvloop (libuv: less time per packet in the relays than asyncio's own loop; the image
    pins it), else on asyncio's loop (a checkout's venv without it)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coroutine)
    else:
        uvloop.run(main_coroutine)


def main() -> int:
    try:
        settings = from_env()
        logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
        if settings.router == "static":
            StaticRouter(settings.static_config)  # fail early on a malformed file
    except (ConfigError, ValueError, OSError) as exc:
        print(f"devhub-sshgw: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        run(serve(settings))
    except ConfigError as exc:  # found only when starting: GATEWAY_METRICS_LISTEN cannot be bound
        print(f"devhub-sshgw: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
