"""Address space for the per-server internal networks.

Docker gives each new network a subnet from its default pools: 15 /16s of 172.16.0.0/12 and 16 /20s
of 192.168.0.0/16, about 30 networks on a host. devhub creates one network per running server, so
the 31st server failed to start ("could not find an available, non-overlapping IPv4 address pool").
Each server network instead gets a small subnet (SUBNET_PREFIX) carved from USER_NETWORK_POOL: a
/16 holds 2048 of them, and Docker's default pools stay free for everything else on the host.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

# /27: 29 addresses for the server's container and the peers attached to its network (hub, proxy,
# egress proxy, SSH gateway, Prometheus), with room to spare.
SUBNET_PREFIX = 27


def parse_pool(raw: str) -> ipaddress.IPv4Network:
    """USER_NETWORK_POOL: a private IPv4 network that holds at least two server subnets."""
    try:
        pool = ipaddress.IPv4Network(raw, strict=True)
    except ValueError as exc:
        raise ValueError(f"expected a private IPv4 network such as 10.213.0.0/16 ({exc})") from None
    if not pool.is_private or pool.is_loopback or pool.is_link_local:
        raise ValueError("expected a private IPv4 network (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
    if pool.prefixlen > SUBNET_PREFIX - 1:
        raise ValueError(f"expected a network of /{SUBNET_PREFIX - 1} or larger: each server takes a /{SUBNET_PREFIX}")
    return pool


def used_subnets(networks: Iterable[dict]) -> list[ipaddress.IPv4Network]:
    """The IPv4 subnets of Docker networks, as `GET /networks` lists them."""
    used = []
    for network in networks:
        for config in (network.get("IPAM") or {}).get("Config") or []:
            try:
                used.append(ipaddress.IPv4Network(config.get("Subnet", ""), strict=False))
            except ValueError:  # IPv6, or no subnet
                continue
    return used


def free_subnet(pool: ipaddress.IPv4Network, used: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network | None:
    """The first /SUBNET_PREFIX of `pool` that overlaps none of `used` (None: the pool is full)."""
    size = 2 ** (32 - SUBNET_PREFIX)
    first, count = int(pool.network_address), pool.num_addresses // size
    blocked: set[int] = set()
    for network in used:
        if not network.overlaps(pool):
            continue
        low = max(int(network.network_address), first) - first
        high = min(int(network.broadcast_address), int(pool.broadcast_address)) - first
        blocked.update(range(low // size, high // size + 1))
    index = next((i for i in range(count) if i not in blocked), None)
    return None if index is None else ipaddress.IPv4Network((first + index * size, SUBNET_PREFIX))


def gateway(subnet: ipaddress.IPv4Network) -> str:
    """The host's address on a server network: its first address, stated when the network is created
    so that `docker network inspect` shows it (Docker records no gateway it picked itself)."""
    return str(next(subnet.hosts()))
