"""Two users on the real stack: own homes, no way into each other's server or container."""

import ipaddress
import threading

import requests

from stack_support import hub_api, start_server, stop_server, user_container
from support import exec_out, health, wait_until


def contents(stack, token, user, path, method="GET", **kwargs):
    return requests.request(method, f"{stack.server_url(user)}/api/contents/{path}",
                            headers={"Authorization": f"token {token}"}, verify=False, timeout=60, **kwargs)


def test_two_users_spawn_at_once_and_stay_apart(stack, alice, bob, alice_token, bob_token, docker_client):
    results = {}
    threads = [threading.Thread(target=lambda u, t: results.__setitem__(u, start_server(stack, t, u)), args=(u, t))
               for u, t in (("alice", alice_token), ("bob", bob_token))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert set(results) == {"alice", "bob"}

    # Each writes into their own home; neither sees the other's file.
    assert contents(stack, alice_token, "alice", "alice-notes.txt", "PUT",
                    json={"type": "file", "format": "text", "content": "alice's secret"}).status_code in (200, 201)
    assert contents(stack, bob_token, "bob", "alice-notes.txt").status_code == 404
    # bob's token and bob's browser cookie do not open alice's server.
    assert contents(stack, bob_token, "alice", "alice-notes.txt").status_code in (403, 404)
    as_bob = bob.session.get(f"{stack.server_url('alice')}/api/contents/alice-notes.txt", timeout=30, allow_redirects=True)
    assert as_bob.status_code in (403, 404) and "alice's secret" not in as_bob.text

    alice_box, bob_box = user_container(docker_client, "alice"), user_container(docker_client, "bob")
    # The image's HEALTHCHECK works under the hub too (jupyterhub-singleuser at the user's prefix), every
    # 30 s instead of the image's 2 s, which would keep a core busy with 25 idle servers.
    check = alice_box.attrs["Config"]["Healthcheck"]
    assert (check["Test"], check["Interval"]) == (["CMD", "devhub-healthcheck"], 30 * 10**9), check
    wait_until(lambda: health(alice_box) == "healthy", 90, interval=0.5, what="alice's container to be healthy")
    assert alice_box.attrs["HostConfig"]["PortBindings"] in ({}, None)  # nothing published on the host
    # Each server's network is a /27 of USER_NETWORK_POOL (default 10.213.0.0/16), not one of Docker's
    # default pools, which run out after about 30 networks; the two do not overlap.
    subnets = {u: ipaddress.IPv4Network(docker_client.networks.get(f"devhubtest-user-{u}").attrs["IPAM"]["Config"][0]["Subnet"])
               for u in ("alice", "bob")}
    assert all(s.prefixlen == 27 and s.subnet_of(ipaddress.IPv4Network("10.213.0.0/16")) for s in subnets.values()), subnets
    assert not subnets["alice"].overlaps(subnets["bob"]), subnets
    alice_ips = [n["IPAddress"] for n in alice_box.attrs["NetworkSettings"]["Networks"].values()]
    probe = "import socket,sys\nfor h in sys.argv[1:]:\n for p in (8888, 2222):\n  s=socket.socket(); s.settimeout(2)\n  print(h, p, s.connect_ex((h, p)) == 0)\n"
    out = exec_out(bob_box, ["python", "-c", probe, *alice_ips, "devhubtest-user-alice"], check=False)
    assert " True" not in out, out
    assert exec_out(bob_box, ["sh", "-c", "test -e /var/run/docker.sock && echo socket || echo none"]).strip() == "none"
    egress = exec_out(bob_box, ["python", "-c", "import socket; s=socket.socket(); s.settimeout(2); "
                                "print(s.connect_ex(('169.254.169.254', 80)))"], check=False)
    assert egress.strip() != "0", egress


def test_home_survives_stop_and_start(stack, alice_token):
    start_server(stack, alice_token, "alice")
    contents(stack, alice_token, "alice", "persist.txt", "PUT", json={"type": "file", "format": "text", "content": "kept"})
    stop_server(stack, alice_token, "alice")
    start_server(stack, alice_token, "alice")
    assert contents(stack, alice_token, "alice", "persist.txt").json()["content"] == "kept"


def test_datasets_read_only_and_no_hub_secrets_in_user_containers(stack, alice_token, docker_client):
    start_server(stack, alice_token, "alice")
    box = user_container(docker_client, "alice")
    result = box.exec_run(["touch", "/datasets/x"])
    assert result.exit_code != 0 and b"Read-only file system" in result.output
    hub = stack.container(docker_client, "hub")
    secrets = exec_out(hub, ["sh", "-c", "cat /srv/jupyterhub/*secret* /srv/jupyterhub/*crypt* /srv/proxy-secret/* 2>/dev/null"])
    values = [v for v in secrets.split() if len(v) >= 32]
    assert values, "found no hub secrets to look for"
    env = " ".join(box.attrs["Config"]["Env"])
    for value in values:
        assert value not in env
    found = box.exec_run(["sh", "-c", "grep -rlsF -e " + " -e ".join(values) +
                          " / --exclude-dir=proc --exclude-dir=sys --exclude-dir=opt --exclude-dir=usr"], user="0")
    assert found.output.strip() == b""
