"""Subnets of USER_NETWORK_POOL for the per-server networks (devhub.subnets)."""

import ipaddress

from devhub import subnets

POOL = ipaddress.IPv4Network("10.213.0.0/16")


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_a_16_pool_holds_2048_servers():
    taken: list[ipaddress.IPv4Network] = []
    while (subnet := subnets.free_subnet(POOL, taken)) is not None:
        taken.append(subnet)
    assert len(taken) == 2048 and len(set(taken)) == 2048
    assert all(t.prefixlen == 27 and t.subnet_of(POOL) for t in taken)


def test_subnets_in_use_anywhere_on_the_engine_are_skipped():
    used = [net("10.213.0.0/27"), net("10.213.0.64/26"), net("172.17.0.0/16"), net("10.0.0.0/8")]
    # 10.0.0.0/8 (say, a network made by hand) covers the whole pool: nothing is free.
    assert subnets.free_subnet(POOL, used) is None
    assert subnets.free_subnet(POOL, used[:3]) == net("10.213.0.32/27")
    assert subnets.free_subnet(POOL, used[:1] + [net("10.213.0.32/27")] + used[1:3]) == net("10.213.0.128/27")


def test_used_subnets_reads_docker_network_listings():
    listing = [
        {"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]}},
        {"Name": "v6", "IPAM": {"Config": [{"Subnet": "fd00::/64"}, {"Subnet": "10.213.0.32/27"}]}},
        {"Name": "host", "IPAM": {"Config": []}},
        {"Name": "none", "IPAM": None},
    ]
    assert subnets.used_subnets(listing) == [net("172.17.0.0/16"), net("10.213.0.32/27")]


def test_pool_must_be_private_ipv4_and_hold_two_servers():
    assert subnets.parse_pool("192.168.77.0/26") == net("192.168.77.0/26")
    for bad, says in [("192.168.77.0/27", "/26 or larger"), ("100.64.0.0/16", "private IPv4"),
                      ("127.0.0.0/16", "private IPv4"), ("10.213.0.5/16", "such as"), ("pool", "such as")]:
        try:
            subnets.parse_pool(bad)
        except ValueError as exc:
            assert says in str(exc), (bad, exc)
        else:
            raise AssertionError(f"{bad} accepted")


def test_the_gateway_is_the_first_address_of_the_subnet():
    assert subnets.gateway(net("10.213.0.32/27")) == "10.213.0.33"
