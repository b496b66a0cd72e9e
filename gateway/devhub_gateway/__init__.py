"""devhub SSH gateway: ``ssh -p 2222 alice@host`` lands in alice's container.

The gateway authenticates the user by public key against the keys the hub stores for her, finds (or
starts) her container through a :class:`~devhub_gateway.router.Router`, and relays the session to
the container's sshd as ``jovyan`` with a key of its own that the container trusts.

Why asyncssh and not paramiko: paramiko's server side runs every auth callback synchronously on the
transport thread (a key lookup over HTTP, or starting a container, blocks that connection's whole
transport), never sees the socket path of ``direct-streamlocal@openssh.com`` channels (VS Code's
socket mode), and has no API to relay ``signal`` requests; asyncssh has async callbacks for auth and
channel opens, full TCP and UNIX-socket forwarding on both its server and client side, signal,
break and window-change relay, and strict-kex support. One event loop then carries thousands of
relayed channels with SSH flow control handled by asyncssh's stream API (``drain()``).

Modules, one job each:

- ``listener`` (the acceptor and what every connection shares), ``connection`` (one client
  connection: admission, key authentication, caps, its session channels), ``upstream`` (the
  connection to the user's sshd, started with progress; why it went away), ``forwarding`` (``-L``,
  ``-D``, socket and ``-R`` channels), ``relay`` (faithful session and channel relay), ``algorithms``
  (what the gateway offers and accepts);
- ``router`` (where a user's sshd is), ``hub_router`` (the JupyterHub implementation), ``target``
  (which of a user's servers a login names: ``alice+exp1``);
- ``keys`` (persistent host and client keys), ``limits`` (failed-auth rate limits, caps on pre-auth
  connections, connections and channels, constant failure timing), ``audit`` (JSON log lines,
  refusals summarised), ``activity`` (keeps the hub's idle culler informed while data flows),
  ``metrics`` (Prometheus counters, GET /metrics), ``config`` (environment), ``__main__``
  (``python -m devhub_gateway``).
"""

__version__ = "0.1.0"
