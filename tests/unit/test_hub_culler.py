"""devhub.culler: which servers devhub's idle cullers stop."""

from datetime import datetime, timedelta, timezone

from devhub.culler import gpu_timeout, idle_servers, profile_timeout

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def server(idle_s, gpus="0", ready=True, last_activity=True):
    at = (NOW - timedelta(seconds=idle_s)).isoformat().replace("+00:00", "Z")
    return {"ready": ready, "last_activity": at if last_activity else None, "started": at,
            "state": {"gpus": gpus} if gpus else {}}


def test_only_idle_servers_holding_gpus():
    users = [
        {"name": "alice", "servers": {"": server(1000)}},                # idle GPU server: culled
        {"name": "bob", "servers": {"": server(100)}},                   # active GPU server
        {"name": "carol", "servers": {"": server(5000, gpus="")}},       # idle, no GPU: IDLE_CULL_TIMEOUT's
        {"name": "dave", "servers": {"train": server(900, gpus="all")}},  # exactly the timeout, named
        {"name": "erin", "servers": {"": server(5000, ready=False)}},    # starting or stopping: left alone
        {"name": "fay", "servers": {"": server(1000, last_activity=False)}},  # never active: since start
    ]
    assert idle_servers(users, NOW, gpu_timeout(900)) == [("alice", ""), ("dave", "train"), ("fay", "")]


def test_each_server_by_its_profiles_timeout():
    def with_timeout(idle_s, idle_timeout):
        model = server(idle_s, gpus="")
        if idle_timeout:
            model["state"]["idle_timeout"] = idle_timeout
        return model

    users = [
        {"name": "alice", "servers": {"": with_timeout(7200, 28800),     # CPU profile, 8 h: spared
                                      "gpu": with_timeout(3600, 3600)}},  # GPU profile, 1 h: culled
        {"name": "bob", "servers": {"": with_timeout(5000, 0)}},         # no profile timeout: the default (1 h)
        {"name": "carol", "servers": {"x": with_timeout(100, 0)}},       # active
    ]
    assert idle_servers(users, NOW, profile_timeout(3600)) == [("alice", "gpu"), ("bob", "")]
    # IDLE_CULL_TIMEOUT=0: only servers whose profile sets a timeout are culled.
    assert idle_servers(users, NOW, profile_timeout(0)) == [("alice", "gpu")]
