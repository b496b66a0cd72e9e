"""devhub.gpu_culler: which servers the GPU idle culler stops."""

from datetime import datetime, timedelta, timezone

from devhub.gpu_culler import idle_gpu_servers

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
    assert idle_gpu_servers(users, NOW, 900) == [("alice", ""), ("dave", "train"), ("fay", "")]
