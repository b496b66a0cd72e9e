"""From inside a user's server (as its user, uid 1000): the hub and the proxy listen on nothing
there, the hub's API is reached only through nginx's internal listener, which replaces forwarded
addresses, and request input cannot forge hub log lines."""

from __future__ import annotations

import json
import uuid

from stack_support import start_server, user_container
from support import exec_out

PROBE = r"""
import errno, json, os, socket, sys, urllib.request
result = {}
for name, ip, port in json.loads(sys.argv[1]):
    s = socket.socket(); s.settimeout(5)
    code = s.connect_ex((ip, port)); s.close()
    result[f"{name}:{port}"] = errno.errorcode.get(code, "open")
def get(path, headers):
    request = urllib.request.Request("http://hub-api:8081" + path, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code
token = {"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}
result["api"] = get("/hub/api/", {})
result["forged_address"] = get("/hub/api/users/alice?probe=" + sys.argv[2], {"X-Real-IP": "203.0.113.77", "X-Forwarded-For": "203.0.113.78"})
result["forged_line"] = get("/hub/api/devhub/ssh/users/x%0A%5BI%20forged-" + sys.argv[2] + "%5D/keys", token)
print(json.dumps(result))
"""


def test_nothing_internal_listens_on_user_networks_and_logs_stay_true(stack, alice_token, docker_client):
    start_server(stack, alice_token, "alice")
    box = user_container(docker_client, "alice")
    network = docker_client.networks.get("devhubtest-user-alice")
    members = {c["Name"]: c["IPv4Address"].split("/")[0] for c in network.attrs["Containers"].values()}
    hub_ip = members[stack.container(docker_client, "hub").name]
    proxy_ip = members[stack.container(docker_client, "proxy").name]
    marker = uuid.uuid4().hex[:12]
    targets = [("hub", hub_ip, 8081), ("proxy", proxy_ip, 8000), ("proxy", proxy_ip, 8001)]
    seen = json.loads(exec_out(box, ["python3", "-c", PROBE, json.dumps(targets), marker], user="1000"))

    # Refused, not filtered: the probes reached the containers, and nothing listens there.
    assert (seen["hub:8081"], seen["proxy:8000"], seen["proxy:8001"]) == ("ECONNREFUSED",) * 3, seen
    # The hub's API through nginx (what the user's Jupyter uses) answers; the probes got the hub's answers.
    assert seen["api"] == 200 and seen["forged_address"] == 403 and seen["forged_line"] == 403, seen

    logs = stack.compose("logs", "--no-color", "hub").stdout
    lines = [line for line in logs.splitlines() if f"probe={marker}" in line]
    box_ip = members[box.name]
    assert any(f"@{box_ip})" in line for line in lines), lines  # the request line names the real caller
    assert not any("203.0.113.7" in line for line in lines), lines
    assert not any(line.split("|", 1)[-1].lstrip().startswith(f"[I forged-{marker}]") for line in logs.splitlines())
    assert f"SSH user x\\n[I forged-{marker}]" in logs  # the attempt is there, on its own line


def test_the_hub_cannot_read_the_key_every_user_container_trusts(stack, docker_client):
    hub, gateway = stack.container(docker_client, "hub"), stack.container(docker_client, "sshgw")
    assert (exec_out(hub, ["id", "-u"]).strip(), exec_out(gateway, ["id", "-u"]).strip()) == ("990", "991")
    code, out = hub.exec_run(["cat", "/srv/sshgw-state/gateway_client_key"])
    assert code == 1 and "Permission denied" in out.decode(), out
    assert exec_out(hub, ["cat", "/srv/sshgw-state/gateway_client_key.pub"]).startswith("ssh-ed25519 ")
    # The gateway's API token: the hub's file, readable by the group compose gives both, nobody else.
    assert exec_out(hub, ["stat", "-c", "%a %u %g", "/srv/sshgw-secret/api_token"]).strip() == "640 990 989"
