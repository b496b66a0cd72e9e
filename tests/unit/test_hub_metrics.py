"""devhub.metrics: what Prometheus reads about the GPU pool and users' servers, and the service
that reads it (only read:metrics)."""

import os

from prometheus_client.parser import text_string_to_metric_families

from devhub import metrics, secrets, services
from devhub.disk import HomeUsage, Reserve
from devhub.settings import load

GID = os.getgid() or 988  # a group of ours to share the token with (root: any, as in the hub container)


def samples(families) -> dict:
    """{(name, labels as a sorted tuple): value} from the exposition Prometheus would scrape."""
    text = metrics.exposition(families).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_gpu_pool_per_device_free_held_and_holder():
    got = samples(metrics.gpu_families(["0", "1", "2"], {"alice": ["0", "2"]}))
    assert got[("devhub_gpu_device_in_use", (("device", "0"),))] == 1
    assert got[("devhub_gpu_device_in_use", (("device", "1"),))] == 0
    assert (got[("devhub_gpu_devices", ())], got[("devhub_gpu_devices_free", ())]) == (3, 1)
    assert got[("devhub_gpu_device_holder", (("device", "2"), ("user", "alice")))] == 1
    assert not any(name == "devhub_gpu_device_holder" for name, _ in samples(metrics.gpu_families(["0"], {"a": ["0"]}, False)))


def test_memory_as_docker_stats_shows_it():
    assert metrics.memory_in_use({"memory_stats": {"usage": 500, "stats": {"inactive_file": 200}}}) == 300  # cgroup v2
    assert metrics.memory_in_use({"memory_stats": {"usage": 500, "stats": {"total_inactive_file": 100}}}) == 400  # v1
    assert metrics.memory_in_use({}) == 0


class FakeDocker:
    """The two calls Servers makes, answering as Docker does for two running servers."""

    def containers(self, filters):
        assert filters["label"] == "devhub.role=user-server" and filters["name"] == "^/?devhub-user-"
        return [{"Id": "a1", "Labels": {"devhub.user": "alice"}, "Created": 1700000000},
                {"Id": "b1", "Labels": {"devhub.user": "bob"}, "Created": 1700000100},
                {"Id": "a2", "Labels": {"devhub.user": "alice", "devhub.server": "exp1"}, "Created": 1700000200}]

    def stats(self, container, stream, one_shot):
        assert (stream, one_shot) == (False, True)  # one sample, no second-long wait per container
        gib = 1024**3
        return {"cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000 if container == "a1" else 0}},
                "memory_stats": {"usage": 2 * gib, "limit": 8 * gib, "stats": {"inactive_file": gib}}}


def servers(tmp_path, user_labels=True):
    usage = HomeUsage(lambda user: f"devhub-home-{user}")
    usage.sizes = {"devhub-home-alice": 5000}
    s = metrics.Servers(FakeDocker, "devhub-user-", usage, Reserve(tmp_path, 0), user_labels)
    s.events.ensure_running = lambda: None  # no Docker event stream here
    for event in ({"Action": "oom", "Actor": {"Attributes": {"devhub.user": "alice"}}},
                  {"Action": "start", "Actor": {"Attributes": {"devhub.user": "alice"}}},
                  {"Action": "oom", "Actor": {"Attributes": {}}}):  # not a user server's: ignored
        s.events.count(event)
    return s


def test_servers_per_user(tmp_path):
    got = samples(servers(tmp_path).families(["alice", "bob", "carol"]))
    alice, bob, exp1 = (("server", ""), ("user", "alice")), (("server", ""), ("user", "bob")), (("server", "exp1"), ("user", "alice"))
    assert got[("devhub_user_server_running", alice)] == got[("devhub_user_server_running", bob)] == 1
    assert got[("devhub_user_server_running", exp1)] == 1  # a named server has series of its own
    assert got[("devhub_user_cpu_seconds_total", alice)] == 2.5 and got[("devhub_user_cpu_seconds_total", exp1)] == 0
    assert got[("devhub_user_memory_bytes", alice)] == 1024**3
    assert got[("devhub_user_memory_limit_bytes", bob)] == 8 * 1024**3
    assert got[("devhub_user_server_created_timestamp_seconds", bob)] == 1700000100
    assert got[("devhub_user_server_created_timestamp_seconds", exp1)] == 1700000200
    alice, bob = (("user", "alice"),), (("user", "bob"),)  # per user: events and the home, shared by her servers
    assert got[("devhub_user_oom_kills_total", alice)] == 1 and got[("devhub_user_server_starts_total", alice)] == 1
    assert got[("devhub_user_oom_kills_total", bob)] == 0  # there before bob's first kill, for increase()
    assert got[("devhub_user_home_bytes", alice)] == 5000
    assert ("devhub_user_home_bytes", (("user", "carol"),)) not in got  # not measured yet
    st = os.statvfs(tmp_path)
    assert got[("devhub_volumes_disk_size_bytes", ())] == st.f_blocks * st.f_frsize


def test_servers_summed_without_user_labels(tmp_path):
    got = samples(servers(tmp_path, user_labels=False).families(["alice", "bob"]))
    assert got[("devhub_user_server_running", ())] == 3
    assert got[("devhub_user_memory_bytes", ())] == 3 * 1024**3
    assert got[("devhub_user_oom_kills_total", ())] == 1
    assert not any(dict(labels).get("user") for _, labels in got)


def test_prometheus_reads_metrics_and_nothing_else(tmp_path):
    settings = load({"METRICS_TOKEN_FILE": str(tmp_path / "metrics-secret" / "api_token"), "METRICS_TOKEN_GID": str(GID),
                     "DATA_DIR": str(tmp_path / "data"), "PROXY_AUTH_TOKEN_FILE": str(tmp_path / "proxy" / "token"),
                     "SSH_GATEWAY": "0"})
    # No shared volume: nothing to hand the token over.
    assert services.metrics_reader(secrets.for_hub(settings).metrics_token) == ([], [])
    (tmp_path / "metrics-secret").mkdir()
    (service,), (role,) = services.metrics_reader(secrets.for_hub(settings).metrics_token)
    assert role == {"name": "prometheus", "scopes": ["read:metrics"], "services": ["prometheus"]}
    token_file = tmp_path / "metrics-secret" / "api_token"
    assert service["api_token"] == token_file.read_text().strip()
    assert token_file.stat().st_mode & 0o777 == 0o640 and token_file.stat().st_gid == GID


def test_scrapes_share_one_measurement():
    import asyncio
    import threading

    calls, release = [], threading.Event()

    def measure(usernames):
        calls.append(usernames)
        release.wait(10)  # Docker being slow: both scrapes arrive while this runs
        return [metrics.GaugeMetricFamily("devhub_test", "t", value=len(calls))]

    async def scrapes(measurement):
        first = asyncio.ensure_future(measurement.exposition(["alice"]))
        second = asyncio.ensure_future(measurement.exposition(["alice"]))
        asyncio.get_running_loop().call_soon(release.set)  # after both have asked
        return await first, await second, await measurement.exposition(["alice"])

    shared = metrics.Measurement(measure, reuse=60)
    one, two, again = asyncio.run(scrapes(shared))
    assert one == two == again and len(calls) == 1  # the third came within `reuse`: served again
    assert b"devhub_metrics_collect_seconds" in one
    fresh = metrics.Measurement(measure, reuse=0)
    asyncio.run(fresh.exposition([]))
    asyncio.run(fresh.exposition([]))
    assert len(calls) == 3  # reuse=0: every scrape measures
