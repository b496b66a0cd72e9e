"""The contract between the SSH gateway and the hub, with no fake on either side: the gateway's own
HubRouter (devhub_gateway.hub_router) against a real JupyterHub process running devhub's handlers
(real_hub.Hub), with the gateway's service token. Keys, routes, start-on-connect with the hub's
progress, named servers, a start that meets a stop under way, an expired login, activity and the
last stop's reason: every call the gateway makes, answered by the code that answers it in production.
"""

import asyncio
import threading
from datetime import datetime, timezone

import pytest

from devhub_gateway.hub_router import HubRouter
from devhub_gateway.router import AccessRefused, RouteError
from real_hub import Hub, ed_line
from support import wait_until

PUBLIC_URL = "https://dev.example.org"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("contract-hub"))
    h.host_key_file.write_text(ed_line("").strip() + "\n")  # every fake server's sshd host key
    yield h
    h.stop()


def gateway_call(hub, call):
    """Run `call(router)` with a fresh HubRouter holding the gateway's token, as the gateway would."""
    async def run():
        router = HubRouter(hub.url + "api", hub.gateway_token, start_timeout=60, public_url=PUBLIC_URL)
        try:
            return await call(router)
        finally:
            await router.close()
    return asyncio.run(run())


def connect(hub, login):
    """What the gateway does when `login` connects: the route, starting the server if need be."""
    lines = []
    route = gateway_call(hub, lambda router: router.route(login, lines.append))
    return route, lines


def server(hub, user, name=""):
    return hub.api("GET", f"users/{user}").json()["servers"].get(name)


def stop(hub, user, name=""):
    path = f"users/{user}/servers/{name}" if name else f"users/{user}/server"
    assert hub.api("DELETE", path).status_code in (202, 204)
    wait_until(lambda: server(hub, user, name) is None, timeout=30, what=f"{user}'s server {name!r} to stop")


def test_keys_and_refusals(hub):
    token = hub.user_token("alice")
    line = ed_line("alice@laptop")
    assert hub.api("POST", f"devhub/ssh/users/alice/keys", token, json={"name": "laptop", "key": line}).status_code == 201
    assert gateway_call(hub, lambda router: router.authorized_keys("alice")) == [line]
    assert gateway_call(hub, lambda router: router.authorized_keys("nobody")) == []
    assert gateway_call(hub, lambda router: router.access_refusal("alice", lambda keys: line in keys)) is None
    assert (gateway_call(hub, lambda router: router.access_refusal("alice", lambda keys: False))
            == "the SSH key you logged in with was removed from the hub")
    assert (gateway_call(hub, lambda router: router.access_refusal("nobody", lambda keys: True))
            == "the account nobody no longer exists on the hub")
    # mallory is blocked (the authenticator refuses her now): the gateway learns why, with her keys.
    mallory_line = ed_line("mallory@laptop")
    assert hub.api("POST", "users/mallory").status_code in (201, 409)
    assert hub.api("POST", "devhub/ssh/users/mallory/keys", json={"name": "k", "key": mallory_line}).status_code == 201
    with pytest.raises(AccessRefused, match="mallory is blocked on this hub") as refused:
        gateway_call(hub, lambda router: router.authorized_keys("mallory"))
    assert refused.value.keys == [mallory_line]


def test_connecting_starts_the_default_server_with_the_hubs_progress(hub):
    hub.user_token("bea")
    assert server(hub, "bea") is None
    route, lines = connect(hub, "bea")
    assert route.started and (route.host, route.port, route.user) == ("10.77.0.2", 2222, "jovyan")
    assert route.host_key_line == hub.host_key_file.read_text().strip()
    assert lines[0] == "your server is not running; starting it"
    assert any(line.startswith("[100%] Server ready at ") for line in lines), lines
    assert server(hub, "bea")["ready"]
    # Running now: the next connection gets the route without a start.
    again, lines = connect(hub, "bea")
    assert not again.started and lines == []
    stop(hub, "bea")


def test_named_servers_unknown_then_started_alone(hub):
    hub.user_token("cleo")
    with pytest.raises(RouteError, match=r"cleo has no server named 'exp1' \(cleo's servers: default\)"):
        connect(hub, "cleo+exp1")
    assert server(hub, "cleo", "exp1") is None  # refused, not started
    assert hub.api("POST", "users/cleo/servers/exp1").status_code in (201, 202)  # created (home page) ...
    wait_until(lambda: (server(hub, "cleo", "exp1") or {}).get("ready"), timeout=30, what="cleo's exp1")
    stop(hub, "cleo", "exp1")  # ... and stopped
    route, lines = connect(hub, "cleo+exp1")
    assert route.started and lines[0] == "your server exp1 is not running; starting it"
    assert any("/user/cleo/exp1/" in line for line in lines), lines
    assert server(hub, "cleo", "exp1")["ready"] and server(hub, "cleo") is None  # the default one untouched
    stop(hub, "cleo", "exp1")


def test_a_connection_during_a_stop_waits_for_it_then_starts(hub):
    hub.user_token("dora")
    route, _ = connect(hub, "dora")
    hub.hold_stops()
    try:
        # The hub answers a stop after it ends or after slow_stop_timeout (10 s): asked aside.
        stopping = threading.Thread(target=hub.api, args=("DELETE", "users/dora/server"), kwargs={"timeout": 60})
        stopping.start()
        wait_until(lambda: server(hub, "dora")["pending"] == "stop", timeout=30, what="dora's stop to be pending")
        lines = []

        def progress(line):
            lines.append(line)
            if "starting it when that is done" in line:  # the gateway waits: now let the stop finish
                hub.release_stops()

        route = gateway_call(hub, lambda router: router.route("dora", progress))
    finally:
        hub.release_stops()
    stopping.join()
    assert route.started, lines
    assert "the hub says: dora is pending stop; starting it when that is done" in lines, lines
    assert server(hub, "dora")["ready"]
    stop(hub, "dora")


def test_an_expired_login_is_told_where_to_log_in(hub):
    hub.user_token("expired-erin")
    with pytest.raises(RouteError, match="your hub login has expired, so the hub cannot start your server: "
                                         f"log in at {PUBLIC_URL}/hub/login, then connect again"):
        connect(hub, "expired-erin")
    assert server(hub, "expired-erin") is None


def test_activity_and_the_last_stop_reach_the_right_server(hub):
    hub.user_token("fay")
    connect(hub, "fay")
    assert hub.api("POST", "users/fay/servers/exp1").status_code in (201, 202)
    wait_until(lambda: (server(hub, "fay", "exp1") or {}).get("ready"), timeout=30, what="fay's exp1")
    before = {name: server(hub, "fay", name)["last_activity"] for name in ("", "exp1")}
    sent = datetime.now(timezone.utc)
    gateway_call(hub, lambda router: router.activity("fay+exp1"))
    after = {name: server(hub, "fay", name)["last_activity"] for name in ("", "exp1")}
    assert after[""] == before[""]  # only exp1's SSH traffic was reported
    assert datetime.fromisoformat(after["exp1"].replace("Z", "+00:00")) >= sent.replace(microsecond=0)
    stop(hub, "fay")
    assert gateway_call(hub, lambda router: router.last_stop("fay")) == "stopped by test-admin"
    assert gateway_call(hub, lambda router: router.last_stop("fay+exp1")) is None  # still running
    stop(hub, "fay", "exp1")
