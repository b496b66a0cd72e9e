"""The gateway's pieces without Docker: HubRouter against a fake hub (exactly the endpoints it
uses, over real HTTP), StaticRouter, rate limits, connection and channel caps, the refusal log,
configuration errors, key files."""

from __future__ import annotations

import asyncio
import io
import json
import resource
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devhub_gateway import keys, metrics
from devhub_gateway.activity import ActivityReporter
from devhub_gateway.audit import Audit, RefusalLog
from devhub_gateway.config import ConfigError, from_env
from devhub_gateway.hub_router import HubRouter
from devhub_gateway.limits import FailureLimiter, Slots, raise_open_files_limit
from devhub_gateway.router import AccessRefused, Route, RouteError, StaticRouter
from fake_hub import HOST_KEY, TOKEN, FakeHub


@pytest.fixture
def hub():
    fake = FakeHub()
    yield fake
    fake.close()


def test_hub_router_keys(hub):
    router = HubRouter(hub.url, TOKEN)
    assert asyncio.run(router.authorized_keys("alice")) == ["ssh-ed25519 AAAA-alice"]
    assert asyncio.run(router.authorized_keys("nobody")) == []
    assert asyncio.run(HubRouter(hub.url, "wrong-token").authorized_keys("alice")) == []


def test_hub_router_route_when_running(hub):
    messages = []
    route = asyncio.run(HubRouter(hub.url, TOKEN).route("alice", messages.append))
    assert route == Route("jupyter-alice", 2222, HOST_KEY, "jovyan")
    assert messages == [] and not [c for c in hub.calls if c[0] == "POST"]
    hub.routes["alice"] = {"host": "jupyter-alice", "port": 2222, "host_key": HOST_KEY, "notice": "home above its soft limit"}
    assert asyncio.run(HubRouter(hub.url, TOKEN).route("alice", print)).notice == "home above its soft limit"


def test_hub_router_starts_a_stopped_server_and_reports_progress(hub):
    messages = []
    route = asyncio.run(HubRouter(hub.url, TOKEN).route("carol", messages.append))
    assert route.host == "jupyter-carol"
    assert ("POST", "/hub/api/users/carol/server", None) in hub.calls  # no body: the hub reuses its last options
    assert messages[0].startswith("your server is not running")
    assert "[10%] Pulling image" in messages and "[100%] Server ready" in messages


def test_hub_router_start_failure_is_a_clear_route_error(hub):
    hub.fail_start.add("carol")
    with pytest.raises(RouteError, match="failed to start: out of GPUs"):
        asyncio.run(HubRouter(hub.url, TOKEN).route("carol", lambda m: None))


def test_hub_router_refused_user_and_why(hub):
    hub.refused["carol"] = "carol is blocked on this hub"
    with pytest.raises(AccessRefused, match="^carol is blocked on this hub$") as refused:
        asyncio.run(HubRouter(hub.url, TOKEN).authorized_keys("carol"))
    assert refused.value.keys == ["ssh-ed25519 AAAA-carol"]  # so only their holder is told why
    with pytest.raises(RouteError, match="refused to route you .*SSH refused: carol is blocked"):
        asyncio.run(HubRouter(hub.url, TOKEN).route("carol", lambda m: None))


def test_hub_router_says_why_live_access_ends(hub):
    router = HubRouter(hub.url, TOKEN)
    holds_alice_key = lambda lines: "ssh-ed25519 AAAA-alice" in lines  # noqa: E731
    assert asyncio.run(router.access_refusal("alice", holds_alice_key)) is None
    hub.keys["alice"] = ["ssh-ed25519 AAAA-other"]
    assert asyncio.run(router.access_refusal("alice", holds_alice_key)) == \
        "the SSH key you logged in with was removed from the hub"
    hub.refused["alice"] = "alice is no longer allowed on this hub"
    assert asyncio.run(router.access_refusal("alice", holds_alice_key)) == "alice is no longer allowed on this hub"
    del hub.keys["alice"]
    assert asyncio.run(router.access_refusal("alice", holds_alice_key)) == "the account alice no longer exists on the hub"
    # A hub that cannot be reached (restarting) gives no answer (and the gateway ends nobody's session).
    away = HubRouter("http://127.0.0.1:9/hub/api", TOKEN, request_timeout=2)
    with pytest.raises(RouteError, match="cannot be reached"):
        asyncio.run(away.access_refusal("alice", holds_alice_key))


def test_expired_hub_login_tells_where_to_log_in(hub):
    hub.expired.add("carol")
    router = HubRouter(hub.url, TOKEN, public_url="https://devhub.example.org")
    with pytest.raises(RouteError, match="your hub login has expired.*log in at https://devhub.example.org/hub/login, "
                                         "then connect again"):
        asyncio.run(router.route("carol", lambda m: None))


def test_static_router_access_follows_its_keys():
    router = StaticRouter({"users": {"alice": {"keys": ["ssh-ed25519 AAAA-alice"]}}})
    assert asyncio.run(router.access_refusal("alice", lambda lines: "ssh-ed25519 AAAA-alice" in lines)) is None
    assert asyncio.run(router.access_refusal("alice", lambda lines: False)) == \
        "the SSH key you logged in with was removed"


def test_hub_router_unreachable_hub():
    with pytest.raises(RouteError, match="cannot be reached"):
        asyncio.run(HubRouter("http://127.0.0.1:9/hub/api", TOKEN, request_timeout=2).route("alice", print))


async def until(condition, changed: asyncio.Event, timeout: float = 30) -> None:
    """Wait until `condition()` holds, re-checking whenever `changed` is set (no polling)."""
    async def watch():
        while True:
            changed.clear()
            if condition():
                return
            await changed.wait()

    await asyncio.wait_for(watch(), timeout)


def test_one_start_in_flight_per_user(hub):
    """Six connections for a stopped server: one POST, one progress stream; all six get the route
    and the progress lines, a late one included."""
    hub.slow.add("carol")

    async def scenario():
        router = HubRouter(hub.url, TOKEN)
        notes = [[] for _ in range(6)]
        noted = asyncio.Event()

        def note_to(i):
            def note(message):
                notes[i].append(message)
                noted.set()
            return note

        waiters = [asyncio.ensure_future(router.route("carol", note_to(i))) for i in range(5)]
        await until(lambda: any("[10%] Pulling image" in n for n in notes), noted)  # the start is under way
        waiters.append(asyncio.ensure_future(router.route("carol", note_to(5))))
        await until(lambda: "[10%] Pulling image" in notes[5], noted)  # the late one caught up on what it missed
        hub.release.set()
        routes = await asyncio.wait_for(asyncio.gather(*waiters), 30)
        await router.close()
        return routes, notes

    routes, notes = asyncio.run(scenario())
    assert {r.host for r in routes} == {"jupyter-carol"}
    assert hub.posts("/users/carol/server") == ["/hub/api/users/carol/server"]
    assert len([c for c in hub.calls if c[1].endswith("/carol/server/progress")]) == 1
    for lines in notes:
        assert lines[0].startswith("your server is not running") and lines[-1] == "[100%] Server ready", lines


def test_slow_starts_do_not_delay_other_users(hub):
    """Six users' servers stuck starting (six progress streams held open) while bob logs in: his key
    lookup and route answer at once (the old thread-pool client had six threads on two CPUs)."""
    slow_users = [f"slow{i}" for i in range(6)]
    for name in slow_users:
        hub.keys[name] = [f"ssh-ed25519 AAAA-{name}"]
        hub.slow.add(name)
    hub.keys["bob"] = ["ssh-ed25519 AAAA-bob"]
    hub.running.add("bob")

    async def scenario():
        router = HubRouter(hub.url, TOKEN)
        notes: list[str] = []
        noted = asyncio.Event()

        def note(message):
            notes.append(message)
            noted.set()

        starts = [asyncio.ensure_future(router.route(name, note)) for name in slow_users]
        await until(lambda: notes.count("[10%] Pulling image") == 6, noted)  # all six streams open and waiting
        t0 = time.monotonic()
        keys = await router.authorized_keys("bob")
        route = await router.route("bob", print)
        elapsed = time.monotonic() - t0
        assert not any(task.done() for task in starts)  # still starting while bob got in
        hub.release.set()
        await asyncio.wait_for(asyncio.gather(*starts), 30)
        await router.close()
        return keys, route, elapsed

    keys, route, elapsed = asyncio.run(scenario())
    assert keys == ["ssh-ed25519 AAAA-bob"] and route.host == "jupyter-bob"
    assert elapsed < 2, f"bob waited {elapsed:.1f} s behind six slow starts"


def test_hub_router_activity(hub):
    asyncio.run(HubRouter(hub.url, TOKEN).activity("alice"))
    method, path, body = hub.calls[-1]
    assert (method, path) == ("POST", "/hub/api/users/alice/activity")
    assert body["last_activity"].endswith("Z") and body["servers"][""]["last_activity"] == body["last_activity"]


def test_static_router(tmp_path):
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"users": {"alice": {"keys": "k1\nk2\n", "host": "c1", "host_key": HOST_KEY},
                                          "bob": {"keys": ["k3"]}}}))
    router = StaticRouter(path)
    assert asyncio.run(router.authorized_keys("alice")) == ["k1", "k2"]
    assert asyncio.run(router.authorized_keys("zed")) == []
    assert asyncio.run(router.route("alice", print)) == Route("c1", 2222, HOST_KEY, "jovyan")
    with pytest.raises(RouteError, match="no server is configured for bob"):
        asyncio.run(router.route("bob", print))
    yaml_path = tmp_path / "routes.yaml"
    yaml_path.write_text("alice:\n  keys: [k1]\n  host: c2\n  port: 22\n  host_key: " + HOST_KEY + "\n")
    assert asyncio.run(StaticRouter(yaml_path).route("alice", print)).port == 22


def test_failure_limiter_blocks_then_recovers():
    now = [0.0]
    limiter = FailureLimiter(burst=10, window=60, block=120, clock=lambda: now[0])
    for _ in range(9):
        assert not limiter.fail("10.0.0.1")
    assert limiter.fail("10.0.0.1") and limiter.blocked("10.0.0.1")
    assert not limiter.blocked("10.0.0.2")
    now[0] = 119
    assert limiter.blocked("10.0.0.1")
    now[0] = 121
    assert not limiter.blocked("10.0.0.1")


def test_slots_cap_per_key():
    counter = Slots(cap=2)
    assert counter.try_acquire("a") and counter.try_acquire("a") and not counter.try_acquire("a")
    assert counter.refusal("a") == "key" and counter.try_acquire("b")
    counter.release("a")
    assert counter.try_acquire("a")


def test_slots_total_cap_and_release_forgets_keys():
    slots = Slots(cap=3, total_cap=4)
    assert all(slots.try_acquire("10.0.0.1") for _ in range(3))
    assert not slots.try_acquire("10.0.0.1") and slots.refusal("10.0.0.1") == "key"
    assert slots.try_acquire("10.0.0.2")
    assert not slots.try_acquire("10.0.0.3") and slots.refusal("10.0.0.3") == "total"
    slots.release("10.0.0.2")
    assert slots.refusal("10.0.0.3") is None and "10.0.0.2" not in slots.live
    for _ in range(3):
        slots.release("10.0.0.1")
    assert slots.live == {} and slots.total == 0
    assert slots.release("10.0.0.9") == 0 and slots.total == 0  # releasing what is not held changes nothing


def test_refusal_log_writes_first_then_one_summary_per_address():
    stream = io.StringIO()
    log = RefusalLog(Audit(stream), interval=60, max_keys=3)
    for _ in range(500):
        log("too many unauthenticated connections from this address", "10.0.0.66")
    log("address blocked", "10.0.0.66")
    log("address blocked", "10.0.0.7")
    for i in range(100):  # a flood from many addresses: past max_keys they share one line
        log("address blocked", f"10.1.0.{i}")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["event"], r["address"]) for r in lines] == [
        ("refused", "10.0.0.66"), ("refused", "10.0.0.66"), ("refused", "10.0.0.7"), ("refused", "other addresses")]
    log.flush()
    summaries = [json.loads(line) for line in stream.getvalue().splitlines()][len(lines):]
    assert {(r["reason"], r["address"], r["count"]) for r in summaries} == {
        ("too many unauthenticated connections from this address", "10.0.0.66", 499),
        ("address blocked", "other addresses", 99)}
    assert all(r["event"] == "refused_summary" and r["interval"] == 60 for r in summaries)
    log("address blocked", "10.0.0.7")  # a new interval: written again
    assert json.loads(stream.getvalue().splitlines()[-1])["address"] == "10.0.0.7"


def test_refusal_log_flushes_by_itself_on_the_event_loop():
    written = None

    class Stream(io.StringIO):
        def write(self, text):
            written.set()
            return super().write(text)

    stream = Stream()

    async def scenario():
        nonlocal written
        written = asyncio.Event()
        log = RefusalLog(Audit(stream), interval=0.2)
        for _ in range(5):
            log("login timeout", "10.0.0.5")
        await until(lambda: "refused_summary" in stream.getvalue(), written, timeout=10)

    asyncio.run(scenario())
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["event"], e.get("count")) for e in events] == [("refused", None), ("refused_summary", 4)]


def test_open_files_soft_limit_is_raised_to_hard():
    soft, hard = raise_open_files_limit()
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
    assert soft == hard or hard == resource.RLIM_INFINITY


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="JUPYTERHUB_API_URL"):
        from_env({})
    with pytest.raises(ConfigError, match="JUPYTERHUB_API_TOKEN"):
        from_env({"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"})
    with pytest.raises(ConfigError, match="GATEWAY_STATIC_CONFIG"):
        from_env({"GATEWAY_ROUTER": "static"})
    with pytest.raises(ConfigError, match="GATEWAY_PORT"):
        from_env({"GATEWAY_ROUTER": "hub", "GATEWAY_PORT": "99999", "JUPYTERHUB_API_URL": "http://h",
                  "JUPYTERHUB_API_TOKEN": "t"})
    with pytest.raises(ConfigError, match="GATEWAY_ROUTER"):
        from_env({"GATEWAY_ROUTER": "ldap"})
    s = from_env({"JUPYTERHUB_API_URL": "http://hub:8081/hub/api", "JUPYTERHUB_API_TOKEN": "t",
                  "GATEWAY_MAX_SESSIONS_PER_USER": "3"})
    assert (s.port, s.max_sessions_per_user, s.activity_interval) == (2222, 3, 300)
    assert "hub_api_token" not in repr(s)  # the token never reaches logs through repr()


HUB_ENV = {"JUPYTERHUB_API_URL": "http://hub:8081/hub/api", "JUPYTERHUB_API_TOKEN": "t"}


def test_abuse_limit_settings():
    s = from_env(HUB_ENV)
    assert (s.login_timeout, s.max_preauth, s.max_preauth_per_address) == (15, 256, 20)
    assert (s.max_channels_per_connection, s.max_channels_per_user, s.max_channels) == (32, 64, 1024)
    assert (s.channel_window, s.hub_max_requests, s.refusal_log_interval) == (1024 * 1024, 64, 60)
    assert (s.access_check_interval, s.hub_public_url) == (30, "")
    assert from_env({**HUB_ENV, "PUBLIC_URL": "https://devhub.example.org/"}).hub_public_url == "https://devhub.example.org"
    s = from_env({**HUB_ENV, "GATEWAY_CHANNEL_WINDOW": "256K", "GATEWAY_MAX_PREAUTH_PER_ADDRESS": "3"})
    assert (s.channel_window, s.max_preauth_per_address) == (256 * 1024, 3)
    assert from_env({**HUB_ENV, "GATEWAY_CHANNEL_WINDOW": "2MiB"}).channel_window == 2 * 1024 * 1024
    for env, message in [
        ({"GATEWAY_CHANNEL_WINDOW": "lots"}, "GATEWAY_CHANNEL_WINDOW='lots' is invalid: expected a size from 64K to 16M"),
        ({"GATEWAY_CHANNEL_WINDOW": "1K"}, "GATEWAY_CHANNEL_WINDOW='1K' is invalid: expected a size from 64K to 16M"),
        ({"GATEWAY_LOGIN_TIMEOUT": "0"}, "GATEWAY_LOGIN_TIMEOUT='0' is invalid: expected a number from 1 to 600"),
        ({"GATEWAY_MAX_PREAUTH": "5"}, "GATEWAY_MAX_PREAUTH_PER_ADDRESS=20 is larger than GATEWAY_MAX_PREAUTH=5"),
        ({"GATEWAY_MAX_CHANNELS_PER_CONNECTION": "100"},
         "GATEWAY_MAX_CHANNELS_PER_CONNECTION=100 is larger than GATEWAY_MAX_CHANNELS_PER_USER=64"),
        ({"GATEWAY_MAX_CHANNELS": "10"}, "GATEWAY_MAX_CHANNELS_PER_USER=64 is larger than GATEWAY_MAX_CHANNELS=10"),
        ({"GATEWAY_MAX_CHANNELS_PER_USER": "x"}, "GATEWAY_MAX_CHANNELS_PER_USER='x' is invalid: expected a whole number >= 1"),
        ({"GATEWAY_ACCESS_CHECK_INTERVAL": "0"}, "GATEWAY_ACCESS_CHECK_INTERVAL='0' is invalid: expected a number from 1 to 3600"),
        ({"PUBLIC_URL": "devhub.example.org"}, "PUBLIC_URL='devhub.example.org' is invalid: expected an http:// or https:// URL"),
    ]:
        with pytest.raises(ConfigError) as info:
            from_env({**HUB_ENV, **env})
        assert str(info.value).startswith(message), str(info.value)


def test_keys_are_generated_once_with_private_modes(tmp_path):
    state = tmp_path / "state"
    host, client = keys.host_key(state), keys.client_key(state)
    assert host.algorithm == b"ssh-ed25519" and client.algorithm == b"ssh-ed25519"
    assert (state / "ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600
    assert (state / "gateway_client_key").stat().st_mode & 0o777 == 0o600
    assert (state / "gateway_client_key.pub").read_text().strip() == keys.public_line(client)
    assert keys.public_line(keys.host_key(state)) == keys.public_line(host)  # persisted, not regenerated


# ---------------------------------------------------------------- why a server stopped

IDLE_CULL = {"reason": "idle for more than 30 s (IDLE_CULL_TIMEOUT)", "by": "jupyterhub-idle-culler",
             "at": "2026-01-01T00:00:00Z"}


def test_hub_router_last_stop_says_why_and_who(hub):
    router = HubRouter(hub.url, TOKEN)
    assert asyncio.run(router.last_stop("alice")) is None  # running again (200): the generic line
    assert asyncio.run(router.last_stop("carol")) is None  # stopped, the hub does not know why
    hub.stops["carol"] = IDLE_CULL
    assert asyncio.run(router.last_stop("carol")) == \
        "idle for more than 30 s (IDLE_CULL_TIMEOUT) by jupyterhub-idle-culler"
    hub.stops["carol"] = {"reason": "stopped by you (from the hub)", "by": "carol", "at": "2026-01-01T00:00:00Z"}
    assert asyncio.run(router.last_stop("carol")) == "stopped by you (from the hub)"  # the reason already says who


def test_hub_router_last_stop_waits_while_the_stop_is_under_way(hub):
    hub.stops["alice"] = {"reason": "an earlier stop", "by": "admin"}
    hub.stop("alice", IDLE_CULL, pending_answers=3)  # three answers say stop_pending (with the earlier stop)
    asked = len(hub.gets("/alice/route"))
    reason = asyncio.run(HubRouter(hub.url, TOKEN).last_stop("alice", every=0.01))
    assert reason == "idle for more than 30 s (IDLE_CULL_TIMEOUT) by jupyterhub-idle-culler"
    assert len(hub.gets("/alice/route")) - asked == 4  # asked again while pending, then the stop's reason


def test_hub_router_last_stop_gives_up_on_a_stop_that_never_ends(hub):
    hub.stop("carol", IDLE_CULL, pending_answers=10 ** 6)
    t0 = time.monotonic()
    assert asyncio.run(HubRouter(hub.url, TOKEN).last_stop("carol", patience=0.3, every=0.01)) is None
    assert 0.3 <= time.monotonic() - t0 < 5
    away = HubRouter("http://127.0.0.1:9/hub/api", TOKEN, request_timeout=1)
    assert asyncio.run(away.last_stop("carol", patience=0.2, every=0.01)) is None


def test_static_router_last_stop():
    router = StaticRouter({"alice": {"keys": ["k"], "last_stop": "stopped for maintenance"}, "bob": {"keys": ["k"]}})
    assert asyncio.run(router.last_stop("alice")) == "stopped for maintenance"
    assert asyncio.run(router.last_stop("bob")) is None


# ---------------------------------------------------------------- activity: only while data flows

class Rounds:
    """ActivityReporter's pause between rounds, stepped by hand: `await rounds.step()` ends one pause
    and returns once the reporter has done that round and pauses again."""

    def __init__(self):
        self.paused = asyncio.Event()
        self.go = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        self.paused.set()
        await self.go.wait()
        self.go.clear()

    async def step(self, times: int = 1) -> None:
        for _ in range(times):
            await asyncio.wait_for(self.paused.wait(), 10)
            self.paused.clear()
            self.go.set()
            await asyncio.wait_for(self.paused.wait(), 10)


class RecordingRouter(StaticRouter):
    """The activity reports a router receives, in order."""

    def __init__(self, config):
        super().__init__(config)
        self.activity_log: list[str] = []

    async def activity(self, login) -> None:
        self.activity_log.append(str(login))


def test_silent_connection_is_reported_once_traffic_keeps_reporting():
    async def scenario():
        router, rounds, audited = RecordingRouter({}), Rounds(), []
        reporter = ActivityReporter(router, 300, on_report=audited.append, wait=rounds.wait)
        reporter.opened("alice")
        await rounds.step(3)  # three intervals of an open, silent connection
        assert router.activity_log == ["alice"]  # reported when it opened, never since
        reporter.traffic("alice")
        await rounds.step()
        assert router.activity_log == ["alice"] * 2  # bytes flowed in that interval
        reporter.traffic("alice")
        reporter.traffic("alice")
        await rounds.step(2)
        assert router.activity_log == ["alice"] * 3  # one report per interval, however many chunks
        reporter.opened("alice")  # her second connection is activity too
        await rounds.step()
        assert router.activity_log == ["alice"] * 4
        reporter.closed("alice")
        reporter.traffic("alice")  # on the connection still open
        await rounds.step()
        assert router.activity_log == ["alice"] * 5
        assert audited == router.activity_log  # the audit's "activity" lines are the reports
        reporter.closed("alice")
        reporter.traffic("alice")  # after her last connection: nothing to report, no loop left
        assert reporter._tasks == {}
        await reporter.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------- metrics

def scrape(m: metrics.Metrics) -> dict[tuple, float]:
    """(sample name, sorted labels) -> value, parsed as Prometheus parses the text format."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(m.render().decode()) for sample in family.samples}


def test_metrics_count_open_things_and_events():
    now = [0.0]
    connections, channels = Slots(10), Slots(64, 1024)
    addresses = FailureLimiter(burst=2, window=60, block=120, clock=lambda: now[0])
    m = metrics.Metrics(connections, channels, addresses)
    assert scrape(m)[("devhub_gateway_sessions_total", (("kind", "sftp"),))] == 0  # every series from the start
    for user in ("alice", "alice", "bob"):
        connections.try_acquire(user)
    for _ in range(3):
        channels.try_acquire("alice")
    addresses.fail("10.0.0.1")
    addresses.fail("10.0.0.1")  # blocked
    addresses.fail("10.0.0.2")  # not yet
    closed_exec = m.session_opened("exec")
    m.session_opened("forward")
    m.session_opened("forward")
    closed_exec()
    closed_exec()  # idempotent: the channel's close and the connection's end may both call it
    m.auth_failed("bad_key")
    m.auth_failed("unknown_user")
    m.auth_failed("bad_key")
    m.relayed(100, 0)
    m.relayed(5, 7)
    m.spawned(12.5)
    m.spawned(400)
    values = scrape(m)
    assert values[("devhub_gateway_connections", ())] == 3
    assert values[("devhub_gateway_user_connections", (("user", "alice"),))] == 2
    assert values[("devhub_gateway_user_connections", (("user", "bob"),))] == 1
    assert values[("devhub_gateway_channels", ())] == 3
    assert values[("devhub_gateway_blocked_addresses", ())] == 1
    assert values[("devhub_gateway_sessions", (("kind", "exec"),))] == 0
    assert values[("devhub_gateway_sessions", (("kind", "forward"),))] == 2
    assert values[("devhub_gateway_sessions_total", (("kind", "exec"),))] == 1
    assert values[("devhub_gateway_sessions_total", (("kind", "forward"),))] == 2
    assert values[("devhub_gateway_auth_failures_total", (("reason", "bad_key"),))] == 2
    assert values[("devhub_gateway_auth_failures_total", (("reason", "unknown_user"),))] == 1
    assert values[("devhub_gateway_bytes_total", (("direction", "in"),))] == 105
    assert values[("devhub_gateway_bytes_total", (("direction", "out"),))] == 7
    assert values[("devhub_gateway_spawn_seconds_bucket", (("le", "15.0"),))] == 1
    assert values[("devhub_gateway_spawn_seconds_bucket", (("le", "300.0"),))] == 1
    assert values[("devhub_gateway_spawn_seconds_count", ())] == 2
    now[0] = 121  # the block expired
    connections.release("bob")
    values = scrape(m)
    assert values[("devhub_gateway_blocked_addresses", ())] == 0
    assert ("devhub_gateway_user_connections", (("user", "bob"),)) not in values  # gone, not a stale zero


def test_metrics_without_user_labels_keep_only_totals():
    connections = Slots(10)
    connections.try_acquire("alice")
    values = scrape(metrics.Metrics(connections, Slots(64), FailureLimiter(), user_labels=False))
    assert values[("devhub_gateway_connections", ())] == 1
    assert not [name for name, _ in values if name == "devhub_gateway_user_connections"]


def test_session_kinds_are_a_fixed_set():
    assert metrics.session_kind(None, None) == "shell"
    assert metrics.session_kind("ls", None) == "exec"
    assert metrics.session_kind(None, "sftp") == "sftp"
    assert metrics.session_kind(None, "anything-a-client-names") == "exec"  # never a label of its own


def test_metrics_endpoint_serves_get_metrics_only_on_the_named_address():
    m = metrics.Metrics(Slots(10), Slots(64), FailureLimiter())
    m.session_opened("shell")

    def http(port: int, method: str, path: str):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method),
                                        timeout=10) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()

    async def scenario():
        server = await metrics.serve(m, "localhost", 0)  # a name: bound to what it resolves to
        bound = {s.getsockname()[0] for s in server.sockets}
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        answers = [await loop.run_in_executor(None, http, port, method, path)
                   for method, path in (("GET", "/metrics"), ("GET", "/"), ("GET", "/metricsx"), ("POST", "/metrics"))]
        server.close()
        with pytest.raises(ConfigError, match=r"^GATEWAY_METRICS_LISTEN=no-such-host.invalid:9101: cannot listen there"):
            await metrics.serve(m, "no-such-host.invalid", 9101)
        return bound, answers

    bound, answers = asyncio.run(scenario())
    assert bound <= {"127.0.0.1", "::1"}, bound  # not 0.0.0.0
    status, kind, body = answers[0]
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    assert 'devhub_gateway_sessions_total{kind="shell"} 1.0' in body
    assert [a[0] for a in answers[1:]] == [404, 404, 404]


def test_metrics_settings():
    s = from_env(HUB_ENV)
    assert (s.metrics_listen, s.metrics_user_labels) == (None, True)
    s = from_env({**HUB_ENV, "GATEWAY_METRICS_LISTEN": "sshgw-metrics:9101", "GATEWAY_METRICS_USER_LABELS": "off"})
    assert (s.metrics_listen, s.metrics_user_labels) == (("sshgw-metrics", 9101), False)
    assert from_env({**HUB_ENV, "GATEWAY_METRICS_LISTEN": "[::1]:9101"}).metrics_listen == ("::1", 9101)
    assert not from_env({**HUB_ENV, "GATEWAY_METRICS_USER_LABELS": "0"}).metrics_user_labels
    for raw in ("9101", ":9101", "sshgw-metrics:", "sshgw-metrics:http", "sshgw-metrics:70000"):
        with pytest.raises(ConfigError) as info:
            from_env({**HUB_ENV, "GATEWAY_METRICS_LISTEN": raw})
        assert str(info.value).startswith(f"GATEWAY_METRICS_LISTEN={raw!r} is invalid: expected host:port"), str(info.value)
    with pytest.raises(ConfigError, match="^GATEWAY_METRICS_USER_LABELS='some' is invalid: expected 1 or 0"):
        from_env({**HUB_ENV, "GATEWAY_METRICS_USER_LABELS": "some"})


# ---- named servers: the login alice+exp1 (devhub_gateway.target) ----

def test_logins_name_the_server():
    from devhub_gateway.target import Target

    assert Target.of("alice") == Target("alice") and Target.of("alice").problem is None
    exp1 = Target.of("alice+exp1")
    assert (exp1.user, exp1.server, exp1.login, exp1.problem) == ("alice", "exp1", "alice+exp1", None)
    assert exp1.audit_fields() == {"user": "alice", "server": "exp1"}
    for login in ("alice+", "alice+Exp1", "alice+a_b", "alice+" + "x" * 33, "alice+-x", "alice+exp1+x"):
        target = Target.of(login)
        assert target.user == "alice"  # her keys still decide who may log in
        assert "after '+' in the SSH user name: use 1-32 characters of a-z, 0-9 and '-'" in target.problem, login


def test_hub_router_starts_a_stopped_named_server(hub):
    hub.named["carol"] = {"exp1"}
    messages = []
    route = asyncio.run(HubRouter(hub.url, TOKEN).route("carol+exp1", messages.append))
    assert route.host == "jupyter-carol-exp1" and route.started
    assert ("POST", "/hub/api/users/carol/servers/exp1", None) in hub.calls  # its own start, last options
    assert not hub.posts("/users/carol/server")  # the default server is left alone
    assert messages[0] == "your server exp1 is not running; starting it" and "[100%] Server ready" in messages
    assert hub.gets("/users/carol/servers/exp1/progress")


def test_hub_router_refuses_an_unknown_named_server_without_starting_it(hub):
    hub.named["carol"] = {"exp1"}
    with pytest.raises(RouteError, match="^carol has no server named 'nope'$"):
        asyncio.run(HubRouter(hub.url, TOKEN).route("carol+nope", lambda m: None))
    assert not [c for c in hub.calls if c[0] == "POST"]


def test_hub_router_activity_and_last_stop_of_a_named_server(hub):
    hub.named["alice"] = {"exp1"}
    asyncio.run(HubRouter(hub.url, TOKEN).activity("alice+exp1"))
    method, path, body = hub.calls[-1]
    assert (method, path) == ("POST", "/hub/api/users/alice/activity") and set(body["servers"]) == {"exp1"}
    hub.stops["alice/exp1"] = {"reason": "idle for more than 1 h (IDLE_CULL_TIMEOUT)", "by": "jupyterhub-idle-culler"}
    assert asyncio.run(HubRouter(hub.url, TOKEN).last_stop("alice+exp1")) == \
        "idle for more than 1 h (IDLE_CULL_TIMEOUT) by jupyterhub-idle-culler"
    assert hub.gets("/devhub/ssh/users/alice/servers/exp1/route")


def test_readme_settings_table_is_the_config_table():
    from devhub_gateway import config

    readme = (Path(__file__).resolve().parents[2] / "gateway" / "README.md").read_text()
    shown = readme.split("<!-- settings table: generated -->\n", 1)[1].split("<!-- end of the settings table -->", 1)[0]
    assert shown == config.markdown(), "regenerate it: python -m devhub_gateway.config --markdown"
    for var in config.TABLE:
        assert var.help.strip(), var.name
