"""devhub.gpus: the device pool and the Docker requests for each GPU mode."""

import pytest
from docker.types import DeviceRequest

from devhub import gpus


def test_mode_none_hides_gpus():
    r = gpus.request_for("none")
    assert r.device_requests == ()
    assert r.env == {"NVIDIA_VISIBLE_DEVICES": "void"}
    assert r.labels == {}


def test_mode_all():
    r = gpus.request_for("all")
    assert r.device_requests == (DeviceRequest(count=-1, capabilities=[["gpu"]]),)
    assert dict(r.device_requests[0]) == {
        "Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}
    }
    assert r.env == {"NVIDIA_VISIBLE_DEVICES": "all"}


def test_mode_ids():
    r = gpus.request_for("ids", ("2", "3"))
    assert dict(r.device_requests[0]) == {
        "Driver": "", "Count": 0, "DeviceIDs": ["2", "3"], "Capabilities": [["gpu"]], "Options": {}
    }
    assert r.env == {"NVIDIA_VISIBLE_DEVICES": "2,3"}
    assert r.labels == {gpus.LABEL_GPUS: "2,3"}


class Running:
    """What Docker reports: {owner: device ids} of running containers (labels)."""

    def __init__(self):
        self.held = {}

    def __call__(self):
        return dict(self.held)


def test_two_users_get_different_devices_third_is_refused():
    pool = gpus.GpuPool(["0", "1"], Running())
    a = pool.claim("alice", 1)
    b = pool.claim("bob", 1)
    assert {a, b} == {("0",), ("1",)}
    with pytest.raises(gpus.NoFreeGpu) as info:
        pool.claim("carol", 1)
    assert str(info.value) == f"no free GPU: all 2 devices are in use by alice ({a[0]}), bob ({b[0]})"
    pool.release("alice")
    assert pool.claim("carol", 1) == a


def test_n_per_server():
    pool = gpus.GpuPool(["0", "1", "2", "3"], Running())
    assert pool.claim("alice", 2) == ("0", "1")
    assert pool.claim("bob", 2) == ("2", "3")
    with pytest.raises(gpus.NoFreeGpu, match="^no free GPU: all 4 devices are in use by alice"):
        pool.claim("carol", 2)


def test_partial_free_message():
    pool = gpus.GpuPool(["0", "1", "2"], Running())
    pool.claim("alice", 2)
    with pytest.raises(gpus.NoFreeGpu, match=r"^no free GPU: 2 needed, 1 of 3 free; in use by alice \(0,1\)"):
        pool.claim("bob", 2)


def test_same_owner_keeps_its_devices():
    pool = gpus.GpuPool(["0", "1"], Running())
    assert pool.claim("alice", 1) == ("0",)
    assert pool.claim("alice", 1) == ("0",)


def test_bookkeeping_survives_restart_via_docker_labels():
    running = Running()
    running.held = {"alice": ["1"]}  # a container left running by the previous hub process
    pool = gpus.GpuPool(["0", "1"], running)  # the new hub process: nothing in memory
    assert pool.claim("bob", 1) == ("0",)
    with pytest.raises(gpus.NoFreeGpu, match=r"alice \(1\), bob \(0\)"):
        pool.claim("carol", 1)
    running.held = {}  # alice's container was stopped and removed
    assert pool.claim("carol", 1) == ("1",)


def test_request_larger_than_pool():
    with pytest.raises(gpus.NoFreeGpu, match="3 device"):
        gpus.GpuPool(["0", "1"], Running()).claim("alice", 3)


class FakeApi:
    def __init__(self, containers):
        self._containers = containers
        self.calls = []

    def containers(self, all, filters):
        self.calls.append((all, filters))
        return self._containers


def test_docker_in_use_reads_labels():
    api = FakeApi([
        {"Id": "c1", "Labels": {"devhub.gpus": "0,1", "devhub.user": "alice"}},
        {"Id": "c2" * 8, "Labels": {"devhub.gpus": "2"}},
    ])
    assert gpus.docker_in_use(api)() == {"alice": ["0", "1"], "c2c2c2c2c2c2": ["2"]}
    all_, filters = api.calls[0]
    assert all_ is True
    assert filters["label"] == "devhub.gpus"
    assert "running" in filters["status"] and "created" in filters["status"] and "exited" not in filters["status"]


def test_held_devices_as_written_in_the_servers_state():
    assert gpus.held(None) == "" and gpus.held(gpus.request_for("none")) == ""
    assert gpus.held(gpus.request_for("all")) == "all"
    assert gpus.held(gpus.request_for("ids", ["1", "3"])) == "1,3"
