"""Notice promptly that a new server answers, so the hub's own check passes on its first try.

JupyterHub checks a started server with a jittered exponential backoff (jupyterhub.utils:
exponential_backoff, 0.2 s doubling up to 5 s): a server that answers 2.4 s after its container
started is typically seen 0.5-1.5 s later. The spawner asks the same URL by the same rule (any
answer below 500 counts) every `interval` seconds instead, and returns when it answers; JupyterHub's
wait_up then succeeds at once.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

# Per request: a server that accepted the connection but has not answered yet gets this long.
REQUEST_TIMEOUT_S = 5.0
MAX_CHECKS_AT_ONCE = 100


class NotAnswering(TimeoutError):
    """The server did not answer HTTP within the timeout (the spawn fails with this message)."""


_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncHTTPClient]" = weakref.WeakKeyDictionary()


def _client() -> AsyncHTTPClient:
    """A client of its own (one per event loop): tornado's shared one queues past 10 requests at a
    time, and 20 servers starting at once must not hold up the hub's calls to the proxy."""
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients[loop] = AsyncHTTPClient(force_instance=True, max_clients=MAX_CHECKS_AT_ONCE)
    return _clients[loop]


async def _listening(url: str, timeout: float) -> bool:
    """Whether anything accepts TCP at `url`'s host and port. Asked first: a refused connection is
    the common answer while a server boots, and tornado's client logs one as an error when the
    spawn is cancelled meanwhile (a user stopping a pending server)."""
    parts = urlsplit(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 80), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


async def answers(url: str, request_timeout: float = REQUEST_TIMEOUT_S) -> bool:
    """Whether `url` gives any HTTP answer below 500 (JupyterHub's rule: even a 404 means up)."""
    if not await _listening(url, request_timeout):
        return False
    try:
        await _client().fetch(url, follow_redirects=False, connect_timeout=request_timeout,
                              request_timeout=request_timeout)
    except HTTPClientError as exc:
        return exc.code < 500  # 599: no connection or a timeout
    except OSError:  # refused or reset: nothing listens yet
        return False
    return True


async def wait_until_answering(url: str, *, timeout: float, interval: float = 0.05) -> float:
    """Ask `url` every `interval` seconds until it answers (see answers); the seconds it took.
    Raises NotAnswering after `timeout` seconds."""
    began = time.monotonic()
    deadline = began + timeout
    while not await answers(url, request_timeout=min(REQUEST_TIMEOUT_S, max(0.1, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            raise NotAnswering(f"the server did not answer at {url} within {timeout:g} s (SPAWN_TIMEOUT)")
        await asyncio.sleep(interval)
    return time.monotonic() - began
