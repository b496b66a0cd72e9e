"""DevhubSpawner: a real DockerSpawner instance with a fake user/hub; Docker is an in-memory fake
at the API boundary (docker.APIClient with a fixed API version, so host configs are built by the
real docker SDK), recording exactly what the spawner asks Docker to do."""

import asyncio
import builtins
import itertools
import json
import subprocess
import time
import sys
from pathlib import Path
from types import SimpleNamespace

import docker
import docker.errors
import pytest
from traitlets import TraitError
from traitlets.config import Config

from devhub import config as devhub_config
from devhub import gpus, names
from devhub.settings import load
from devhub.spawner import DevhubSpawner

HUB_ID = "h" * 64
PROXY_ID = "p" * 64
NGINX_ID = "n" * 64
ids = (f"{n:064x}" for n in itertools.count(1))


class FakeDocker(docker.APIClient):
    """Enough of the Docker Engine API for DockerSpawner and DevhubSpawner, in memory."""

    def __init__(self, in_compose=True):
        super().__init__(base_url="unix:///nonexistent/docker.sock", version="1.41")
        self.calls = []
        self.containers_ = {}
        self.networks_ = {}
        self.volumes_ = {}
        if in_compose:
            for cid, service in ((HUB_ID, "hub"), (PROXY_ID, "proxy"), (NGINX_ID, "nginx")):
                labels = {"com.docker.compose.project": "devhub", "com.docker.compose.service": service}
                self.containers_[cid] = {"Id": cid, "Name": service, "Image": "sha256:hubimage",
                                         "Config": {"Labels": labels, "Env": []}, "State": {"Status": "running", "Running": True},
                                         "NetworkSettings": {"Networks": {}}}
            self.hostname = HUB_ID[:12]
        else:
            self.hostname = "laptop"

    def _find(self, ref):
        for c in self.containers_.values():
            if ref in (c["Id"], c["Name"]) or (len(ref) >= 12 and c["Id"].startswith(ref)):
                return c
        raise not_found(f"No such container: {ref}")

    def inspect_image(self, image):
        self.calls.append(("inspect_image", image))
        return {"Config": {"Cmd": None}}  # like devhub/dev-gpu (`CMD []`)

    def inspect_container(self, ref):
        return self._find(ref)

    def containers(self, all=False, filters=None, **kw):  # noqa: A002 - the SDK's parameter name
        include_stopped = all
        wanted = filters.get("label", [])
        wanted = [wanted] if isinstance(wanted, str) else wanted
        statuses = filters.get("status") or (None if include_stopped else ["running"])
        result = []
        for c in self.containers_.values():
            labels = c["Config"]["Labels"]
            if statuses is None or c["State"]["Status"] in statuses:
                if builtins.all(_label_matches(labels, w) for w in wanted):
                    result.append({"Id": c["Id"], "Labels": labels})
        return result

    def create_container(self, image, **kwargs):
        self.calls.append(("create_container", image, {**kwargs, "image": image}))
        cid = next(ids)
        self.containers_[cid] = {"Id": cid, "Name": kwargs["name"], "Image": image,
                                 "Config": {"Labels": kwargs.get("labels") or {}, "Env": []},
                                 "State": {"Status": "created", "Running": False}, "create": kwargs,
                                 "NetworkSettings": {"Networks": {}}}
        return {"Id": cid}

    def start(self, container):
        self.calls.append(("start", container))
        c = self._find(container)
        c["State"].update(Status="running", Running=True)
        mode = c.get("create", {}).get("host_config", {}).get("NetworkMode")
        if mode and mode in self.networks_:
            c["NetworkSettings"]["Networks"][mode] = {"IPAddress": "10.99.0.2"}
            self.networks_[mode]["Containers"][c["Id"]] = {}  # Docker lists running containers on it

    def _leave_networks(self, c):
        for network in self.networks_.values():
            network["Containers"].pop(c["Id"], None)

    def stop(self, container, **kw):
        self.calls.append(("stop", container))
        self._find(container)["State"].update(Status="exited", Running=False, ExitCode=0)
        self._leave_networks(self._find(container))

    def remove_container(self, container, **kw):
        self.calls.append(("remove_container", container))
        self._leave_networks(self._find(container))
        self.containers_.pop(self._find(container)["Id"])

    def wait(self, container, **kw):
        return {"StatusCode": 0}

    def networks(self, names=None, **kw):
        return [n for n in self.networks_.values() if names is None or n["Name"] in names]

    def create_network(self, name, **kwargs):
        self.calls.append(("create_network", name, kwargs))
        nid = next(ids)
        self.networks_[name] = {"Id": nid, "Name": name, "Containers": {}, "IPAM": kwargs.get("ipam") or {}, **kwargs}
        return {"Id": nid}

    def _network(self, ref):
        for n in self.networks_.values():
            if ref in (n["Id"], n["Name"]):
                return n
        raise not_found(f"network {ref} not found")

    def inspect_network(self, ref, **kw):
        return self._network(ref)

    def connect_container_to_network(self, container, net_id, aliases=None, **kw):
        self.calls.append(("connect", container, self._network(net_id)["Name"], aliases))
        self._network(net_id)["Containers"][container] = {"Aliases": aliases}

    def disconnect_container_from_network(self, container, net_id, force=False):
        self.calls.append(("disconnect", container, self._network(net_id)["Name"]))
        self._network(net_id)["Containers"].pop(container)

    def remove_network(self, net_id):
        n = self._network(net_id)
        self.calls.append(("remove_network", n["Name"]))
        self.networks_.pop(n["Name"])

    def inspect_volume(self, name):
        if name not in self.volumes_:
            raise not_found(f"no such volume {name}")
        return self.volumes_[name]

    def create_volume(self, name, labels=None, **kw):
        self.calls.append(("create_volume", name, labels))
        self.volumes_[name] = {"Name": name, "Labels": labels}
        return self.volumes_[name]

    def remove_volume(self, name, **kw):
        self.calls.append(("remove_volume", name))
        self.volumes_.pop(name)


def not_found(message):
    return docker.errors.NotFound(message, response=SimpleNamespace(status_code=404, reason="Not Found"))


def _label_matches(labels, wanted):
    key, _, value = wanted.partition("=")
    return key in labels and (not value or labels[key] == value)


class FakeHub:
    def __init__(self):
        self.api_url = "http://hub:8081/hub/api"
        self.base_url = "/hub/"
        self.public_host = ""
        self.url = "http://hub:8081/hub/"


class FakeUser:
    def __init__(self, name):
        self.name = name
        self.escaped_name = name
        self.url = f"/user/{name}/"
        self.server = None
        self.settings = {}
        self.spawners = {}
        self.stopped = []

    async def stop(self, name):  # as JupyterHub's User.stop: the spawner stops, then leaves the dict
        await self.spawners[name].stop()
        self.stopped.append(name)
        self.spawners.pop(name)


@pytest.fixture
def fake_docker(monkeypatch):
    fake = FakeDocker()
    monkeypatch.setattr(DevhubSpawner, "_client", fake)
    monkeypatch.setattr(gpus, "_shared", None)
    monkeypatch.setattr("devhub.spawner.socket.gethostname", lambda: fake.hostname)
    return fake


def make_spawner(tmp_path, username="alice", user_options=None, server="", user=None, **env):
    env = {"DATA_DIR": str(tmp_path / "data"), "PROXY_AUTH_TOKEN_FILE": str(tmp_path / "token"), **env}
    c = Config()
    devhub_config.configure(c, load(env))
    # JupyterHub reads a spawner's name from its database row; a subclass stands in for that here.
    cls = type("NamedDevhubSpawner", (DevhubSpawner,), {"name": server}) if server else DevhubSpawner
    spawner = cls(user=user or FakeUser(username), hub=FakeHub(), config=c, api_token="user-api-token")
    spawner.user.spawners[server] = spawner
    spawner.server = SimpleNamespace(base_url=f"/user/{username}/{server}", ip="", port=8888)
    spawner.user_options = user_options or {}
    spawner.ready_poll_interval = 0  # the fake's containers serve nothing; see test_start_returns_once_the_server_answers
    return spawner


def created(fake):
    (call,) = [c for c in fake.calls if c[0] == "create_container"]
    return call[2]


def run(coro):
    return asyncio.run(coro)


def test_container_is_hardened_and_isolated(tmp_path, fake_docker):
    sp = make_spawner(tmp_path, USER_MEM_LIMIT="6G", USER_CPU_LIMIT="1.5", USER_PIDS_LIMIT="512",
                      USER_SHM_SIZE="256m", USER_TMP_SIZE="1G", DATASETS_SOURCE="/srv/datasets")
    ip, port = run(sp.start())
    assert (ip, port) == ("10.99.0.2", 8888)
    kw = created(fake_docker)
    hc = kw["host_config"]
    assert kw["name"] == "devhub-user-alice"
    assert kw["image"] == "devhub/dev-gpu:latest"
    assert kw["command"] == []
    assert kw["user"] == "1000:100"
    assert kw["labels"] == {"devhub.user": "alice", "devhub.role": "user-server"}
    assert kw["healthcheck"] == {"interval": 30 * 10**9}  # the image's check, every 30 s instead of 2 s
    assert hc["CapDrop"] == ["ALL"]
    assert hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["ReadonlyRootfs"] is True
    assert hc["Tmpfs"] == {
        "/tmp": f"rw,nosuid,nodev,size={1024**3},mode=1777",
        "/run": "rw,nosuid,nodev,noexec,uid=1000,gid=100,mode=0755,size=64m",
    }
    assert hc["PidsLimit"] == 512
    assert hc["Memory"] == 6 * 1024**3
    assert hc["CpuQuota"] == 150_000 and hc["CpuPeriod"] == 100_000
    assert hc["ShmSize"] == 256 * 1024**2
    assert hc["AutoRemove"] is True
    assert "PortBindings" not in hc or not hc["PortBindings"]
    assert hc["NetworkMode"] == "devhub-user-alice"
    assert sorted(hc["Binds"]) == ["/srv/datasets:/datasets:ro", "devhub-home-alice:/home/jovyan:rw"]
    assert "DeviceRequests" not in hc
    env = kw["environment"]
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert env["DEVHUB_SSH_AUTHORIZED_KEYS"] == ""
    assert env["JUPYTERHUB_API_TOKEN"] == "user-api-token"
    assert env["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"


# devhub's own options, each with the variable devhub.config sets it from (named in its help).
DEVHUB_OPTIONS = {
    "profiles": "PROFILES", "gpu_mode": "GPU_MODE", "gpu_devices": "GPU_DEVICES", "pids_limit": "USER_PIDS_LIMIT",
    "shm_size": "USER_SHM_SIZE", "tmp_size": "USER_TMP_SIZE", "datasets_source": "DATASETS_SOURCE",
    "home_volume_prefix": "USER_VOLUME_PREFIX", "network_prefix": "USER_NETWORK_PREFIX",
    "on_user_delete": "ON_USER_DELETE", "extra_ca": "USER_EXTRA_CA", "egress_policy": "EGRESS",
    "hub_connect_host": "HUB_CONNECT_HOST", "ssh_gateway": "SSH_GATEWAY",
    "gateway_client_key_file": "SSH_GATEWAY_CLIENT_KEY_FILE",
}


def test_options_are_documented_traits():
    """`jupyterhub --help-all` (devhub's spawner is an entry point: hub/devhub-*.dist-info) lists every
    option of devhub's, with its help."""
    hub_dir = Path(__file__).resolve().parents[2] / "hub"
    jupyterhub = Path(sys.executable).parent / "jupyterhub"
    text = subprocess.run([str(jupyterhub), "--help-all"], capture_output=True, text=True, timeout=120, check=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(hub_dir)}).stdout
    assert text.count("--DevhubSpawner.") == DevhubSpawner.class_get_help().count("--DevhubSpawner.")
    flat = " ".join(text.split())
    traits = DevhubSpawner.class_traits(config=True)
    for name, variable in DEVHUB_OPTIONS.items():
        assert f"--DevhubSpawner.{name}=" in text
        assert variable in traits[name].help and " ".join(traits[name].help.split()) in flat
    assert "--DevhubSpawner.pids_limit=<Int>\n    Processes per server (USER_PIDS_LIMIT).\n    Default: 1024" in text
    assert "Choices: any of ['remove', 'archive', 'keep']" in text  # on_user_delete
    assert "devhub_settings" not in text


def test_option_defaults_are_the_settings_defaults(tmp_path):
    """A spawner made without devhub.config behaves as one configured from an empty environment."""
    c = Config()
    devhub_config.configure(c, load({"DATA_DIR": str(tmp_path / "data"), "PROXY_AUTH_TOKEN_FILE": str(tmp_path / "t")}))
    bare = DevhubSpawner()
    for name in DEVHUB_OPTIONS.keys() - {"egress_policy"}:  # the default egress policy denies the public host
        assert getattr(bare, name) == c.DevhubSpawner[name], name
    assert bare.egress_policy.enabled and c.DevhubSpawner.egress_policy.enabled


def test_a_config_d_file_overrides_options_one_by_one(tmp_path, fake_docker):
    overrides = tmp_path / "data" / "jupyterhub_config.d"
    overrides.mkdir(parents=True)
    (overrides / "50-limits.py").write_text(
        "c.DevhubSpawner.pids_limit = 256\nc.DevhubSpawner.shm_size = '2G'\nc.Spawner.mem_limit = '3G'\n")
    sp = make_spawner(tmp_path, USER_MEM_LIMIT="6G", USER_CPU_LIMIT="1.5", USER_PIDS_LIMIT="512",
                      USER_SHM_SIZE="256m", USER_TMP_SIZE="1G", DATASETS_SOURCE="/srv/datasets")
    run(sp.start())
    hc = created(fake_docker)["host_config"]
    assert (hc["PidsLimit"], hc["ShmSize"], hc["Memory"]) == (256, 2 * 1024**3, 3 * 1024**3)
    # The others still come from the environment.
    assert hc["Tmpfs"]["/tmp"] == f"rw,nosuid,nodev,size={1024**3},mode=1777"
    assert hc["CpuQuota"] == 150_000
    assert "/srv/datasets:/datasets:ro" in hc["Binds"]


def test_invalid_option_overrides_are_refused(tmp_path):
    for name, value in (("gpu_mode", "two"), ("gpu_mode", "0"), ("tmp_size", "lots"), ("on_user_delete", "shred")):
        with pytest.raises(TraitError, match=name):
            DevhubSpawner(config=Config({"DevhubSpawner": {name: value}}))


def test_no_hub_secrets_in_user_environment(tmp_path, fake_docker, monkeypatch):
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "oauth-secret-value")
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "proxy-token-value")
    sp = make_spawner(tmp_path)
    run(sp.start())
    env = created(fake_docker)["environment"]
    values = " ".join(env.values())
    for secret_file in ("data/jupyterhub_cookie_secret", "data/crypt_key"):
        assert (tmp_path / secret_file).read_text().strip() not in values
    assert "oauth-secret-value" not in values and "proxy-token-value" not in values
    assert not {"JUPYTERHUB_CRYPT_KEY", "CONFIGPROXY_AUTH_TOKEN", "OAUTH_CLIENT_SECRET"} & set(env)


def test_users_reach_the_hub_api_only_through_the_front_door(tmp_path, fake_docker):
    """USERS_HUB_API_URL (compose): user servers call the hub's API at nginx's internal listener,
    which overwrites the forwarded address; the hub and proxy join the network nameless."""
    sp = make_spawner(tmp_path, USERS_HUB_API_URL="http://hub-api:8081", EGRESS="off")
    run(sp.start())
    env = created(fake_docker)["environment"]
    assert env["JUPYTERHUB_API_URL"] == "http://hub-api:8081/hub/api"
    assert env["JUPYTERHUB_ACTIVITY_URL"] == "http://hub-api:8081/hub/api/users/alice/activity"
    connects = sorted(c[1:] for c in fake_docker.calls if c[0] == "connect")
    assert connects == [(HUB_ID, "devhub-user-alice", []), (NGINX_ID, "devhub-user-alice", ["hub-api"]),
                        (PROXY_ID, "devhub-user-alice", [])]
    with_egress = make_spawner(tmp_path, username="bob", USERS_HUB_API_URL="http://hub-api:8081")
    assert with_egress.peer_aliases("egress") == ["egress"]
    with_egress.egress_key = "k" * 64
    assert with_egress.egress_environment()["NO_PROXY"].split(",")[-1] == "hub-api"


def test_user_network_is_internal_and_hub_proxy_attached(tmp_path, fake_docker):
    sp = make_spawner(tmp_path, username="a.b")
    run(sp.start())
    (net_call,) = [c for c in fake_docker.calls if c[0] == "create_network"]
    assert net_call[1] == "devhub-user-a-2eb"
    assert net_call[2]["internal"] is True and net_call[2]["driver"] == "bridge"
    assert net_call[2]["labels"] == {"devhub.user": "a.b", "devhub.role": "user-network"}
    connects = sorted(c[1:] for c in fake_docker.calls if c[0] == "connect")
    assert connects == [(HUB_ID, "devhub-user-a-2eb", ["hub"]), (PROXY_ID, "devhub-user-a-2eb", ["proxy"])]
    # A second user gets a different network, on the next subnet of the pool; nothing is shared.
    other = make_spawner(tmp_path, username="a_b")
    run(other.start())
    assert set(fake_docker.networks_) == {"devhub-user-a-2eb", "devhub-user-a-5fb"}
    assert [n["IPAM"]["Config"][0]["Subnet"] for n in fake_docker.networks_.values()] == ["10.213.0.0/27", "10.213.0.32/27"]
    # Stop: container removed; the network stays (with nothing of the user's on it) for the next start.
    run(sp.stop())
    assert not any(c[0] == "remove_network" for c in fake_docker.calls)
    assert set(fake_docker.networks_["devhub-user-a-2eb"]["Containers"]) == {HUB_ID, PROXY_ID}
    assert not any(c[0] == "remove_volume" for c in fake_docker.calls)
    # The next start reuses it as it is: no network created, nothing attached again.
    before = len(fake_docker.calls)
    run(sp.start())
    again = [c[0] for c in fake_docker.calls[before:]]
    assert "create_container" in again and "start" in again
    assert "create_network" not in again and "connect" not in again
    # Deleting the server removes its network (hub and proxy detached first); the home stays.
    run(sp.stop())
    run(sp.delete_forever())
    assert ("remove_network", "devhub-user-a-2eb") in fake_docker.calls
    assert "devhub-user-a-2eb" not in fake_docker.networks_


def test_poll_reattaches_recreated_proxy(tmp_path, fake_docker):
    sp = make_spawner(tmp_path)
    run(sp.start())
    net = fake_docker.networks_["devhub-user-alice"]
    net["Containers"].pop(PROXY_ID)  # the proxy container was recreated
    assert run(sp.poll()) is None
    assert PROXY_ID in net["Containers"]


def test_gpu_mode_all(tmp_path, fake_docker):
    sp = make_spawner(tmp_path, GPU_MODE="all")
    run(sp.start())
    kw = created(fake_docker)
    assert kw["host_config"]["DeviceRequests"] == [
        {"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert kw["environment"]["NVIDIA_VISIBLE_DEVICES"] == "all"


def test_gpu_mode_n_distinct_devices_refusal_and_release(tmp_path, fake_docker):
    env = {"GPU_MODE": "1", "GPU_DEVICES": "0,1"}
    alice, bob, carol = (make_spawner(tmp_path, username=u, **env) for u in ("alice", "bob", "carol"))
    run(alice.start())
    run(bob.start())
    creates = [c[2] for c in fake_docker.calls if c[0] == "create_container"]
    got = [kw["host_config"]["DeviceRequests"][0]["DeviceIDs"] for kw in creates]
    assert sorted(got) == [["0"], ["1"]]
    for kw, ids_ in zip(creates, got):
        assert kw["host_config"]["DeviceRequests"][0]["Capabilities"] == [["gpu"]]
        assert kw["environment"]["NVIDIA_VISIBLE_DEVICES"] == ids_[0]
        assert kw["labels"]["devhub.gpus"] == ids_[0]
    with pytest.raises(gpus.NoFreeGpu) as info:
        run(carol.start())
    assert str(info.value) == "no free GPU: all 2 devices are in use by alice (0), bob (1)"
    assert "devhub-user-carol" not in [c["Name"] for c in fake_docker.containers_.values()]
    run(alice.stop())
    run(carol.start())
    assert created_for(fake_docker, "devhub-user-carol")["host_config"]["DeviceRequests"][0]["DeviceIDs"] == ["0"]


def test_gpu_bookkeeping_after_hub_restart(tmp_path, fake_docker, monkeypatch):
    env = {"GPU_MODE": "1", "GPU_DEVICES": "0,1"}
    run(make_spawner(tmp_path, username="alice", **env).start())
    monkeypatch.setattr(gpus, "_shared", None)  # a new hub process: empty memory
    bob = make_spawner(tmp_path, username="bob", **env)
    run(bob.start())
    assert created_for(fake_docker, "devhub-user-bob")["host_config"]["DeviceRequests"][0]["DeviceIDs"] == ["1"]


def created_for(fake, name):
    return [c[2] for c in fake.calls if c[0] == "create_container" and c[2]["name"] == name][-1]


def test_profiles_form_and_apply(tmp_path, fake_docker):
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps([
        {"name": "small", "display_name": "Small", "cpu": 1, "mem": "2G"},
        {"name": "gpu", "display_name": "<b>GPU</b>", "cpu": 4, "mem": "16G", "gpus": 1},
    ]))
    sp = make_spawner(tmp_path, PROFILES=str(profiles), GPU_DEVICES="3")
    form = run(sp.get_options_form())
    assert 'name="profile"' in form and 'value="small"' in form and 'value="gpu"' in form
    assert "&lt;b&gt;GPU&lt;/b&gt; (4 CPU, 16G memory, 1 GPU(s))" in form  # escaped
    assert sp.run_options_from_form({"profile": ["gpu"]}) == {"profile": "gpu"}
    with pytest.raises(ValueError, match="unknown profile"):
        sp.run_options_from_form({"profile": ["huge"]})
    sp.user_options = {"profile": "gpu"}
    run(sp.start())
    hc = created(fake_docker)["host_config"]
    assert hc["Memory"] == 16 * 1024**3 and hc["CpuQuota"] == 400_000
    assert hc["DeviceRequests"][0]["DeviceIDs"] == ["3"]


def test_unknown_profile_through_api_is_refused(tmp_path, fake_docker):
    profiles = tmp_path / "profiles.json"
    profiles.write_text('[{"name": "small"}]')
    sp = make_spawner(tmp_path, PROFILES=str(profiles), user_options={"profile": "huge"})
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        run(sp.start())


def test_no_form_without_profiles(tmp_path, fake_docker):
    assert run(make_spawner(tmp_path).get_options_form()) == ""


def test_ssh_keys_hook(tmp_path, fake_docker):
    sp = make_spawner(tmp_path)

    async def keys(spawner):
        return f"ssh-ed25519 AAAA {spawner.user.name}@laptop"

    sp.ssh_authorized_keys = keys
    run(sp.start())
    assert created(fake_docker)["environment"]["DEVHUB_SSH_AUTHORIZED_KEYS"] == "ssh-ed25519 AAAA alice@laptop"


def test_long_hostile_username(tmp_path, fake_docker):
    name = "-Évil.user/" * 20
    sp = make_spawner(tmp_path, username=name)
    run(sp.start())
    kw = created(fake_docker)
    assert len(kw["name"]) <= 63 and kw["name"].startswith("devhub-user-")
    assert kw["host_config"]["NetworkMode"] in fake_docker.networks_


def test_delete_forever_remove(tmp_path, fake_docker):
    fake_docker.volumes_["devhub-home-alice"] = {"Name": "devhub-home-alice"}
    run(make_spawner(tmp_path).delete_forever())
    assert "devhub-home-alice" not in fake_docker.volumes_


def test_delete_forever_keep(tmp_path, fake_docker):
    fake_docker.volumes_["devhub-home-alice"] = {"Name": "devhub-home-alice"}
    run(make_spawner(tmp_path, ON_USER_DELETE="keep").delete_forever())
    assert "devhub-home-alice" in fake_docker.volumes_


def test_delete_forever_archive(tmp_path, fake_docker):
    fake_docker.volumes_["devhub-home-alice"] = {"Name": "devhub-home-alice"}
    run(make_spawner(tmp_path, ON_USER_DELETE="archive").delete_forever())
    (archive,) = [v for v in fake_docker.volumes_ if v.startswith("devhub-archive-alice-")]
    assert "devhub-home-alice" not in fake_docker.volumes_
    helper = [c for c in fake_docker.calls if c[0] == "create_container"][-1]
    assert helper[1] == "sha256:hubimage"  # the hub's own image
    kw = helper[2]
    assert kw["entrypoint"] == ["cp", "-a", "/from/.", "/to/"]
    assert sorted(kw["host_config"]["Binds"]) == [f"{archive}:/to:rw", "devhub-home-alice:/from:ro"]
    assert kw["host_config"]["NetworkMode"] == "none"
    assert kw["host_config"]["CapDrop"] == ["ALL"]
    assert not any(c["Name"].startswith("devhub-archiver-") for c in fake_docker.containers_.values())


def test_delete_forever_archive_failure_keeps_volume(tmp_path, fake_docker, monkeypatch):
    fake_docker.volumes_["devhub-home-alice"] = {"Name": "devhub-home-alice"}
    monkeypatch.setattr(fake_docker, "wait", lambda *a, **k: {"StatusCode": 1})
    monkeypatch.setattr(fake_docker, "logs", lambda *a, **k: b"cp: No space left on device", raising=False)
    with pytest.raises(RuntimeError, match="No space left on device; the home volume was kept"):
        run(make_spawner(tmp_path, ON_USER_DELETE="archive").delete_forever())
    assert "devhub-home-alice" in fake_docker.volumes_


def test_outside_compose_only_warns(tmp_path, monkeypatch):
    fake = FakeDocker(in_compose=False)
    monkeypatch.setattr(DevhubSpawner, "_client", fake)
    monkeypatch.setattr("devhub.spawner.socket.gethostname", lambda: fake.hostname)
    run(make_spawner(tmp_path).start())
    assert not any(c[0] == "connect" for c in fake.calls)


def test_operator_extra_host_config_adds_but_never_loosens_the_hardening(tmp_path, fake_docker):
    """A jupyterhub_config.d file that sets extra_host_config keeps every hardening flag."""
    overrides = tmp_path / "data" / "jupyterhub_config.d"
    overrides.mkdir(parents=True)
    (overrides / "50-loosen.py").write_text(
        "c.DevhubSpawner.extra_host_config = {'cap_drop': [], 'cap_add': ['SYS_ADMIN'], 'privileged': True,\n"
        "    'read_only': False, 'security_opt': [], 'pids_limit': 0, 'network_mode': 'host',\n"
        "    'extra_hosts': {'licence-server': '10.9.8.7'}}\n")
    sp = make_spawner(tmp_path, USER_PIDS_LIMIT="256")
    run(sp.start())
    hc = created(fake_docker)["host_config"]
    assert hc["CapDrop"] == ["ALL"] and not hc.get("CapAdd") and not hc.get("Privileged")
    assert hc["ReadonlyRootfs"] is True and hc["SecurityOpt"] == ["no-new-privileges"] and hc["PidsLimit"] == 256
    assert hc["NetworkMode"] == "devhub-user-alice"
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}  # rotated
    assert hc["ExtraHosts"] == ["licence-server:10.9.8.7"]  # the operator's own addition is kept


@pytest.mark.parametrize("username", ["x{0}y", "{username}", "a}b{", "{servername}"])
def test_braces_in_user_names_are_kept_literally(tmp_path, fake_docker, username):
    """DockerSpawner formats create kwargs with str.format; the label the GPU pool trusts must be the
    real name, and a name like `{0}` must not break the spawn."""
    sp = make_spawner(tmp_path, username)
    run(sp.start())
    kw = created(fake_docker)
    assert kw["labels"]["devhub.user"] == username
    assert kw["name"] == names.ServerObjects(user=username, network_prefix="devhub-user-").container and "{" not in kw["name"]


# ---- named servers ----

def test_named_servers_get_own_container_network_and_gpus_but_share_the_home(tmp_path, fake_docker):
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps([{"name": "cpu", "cpu": 1, "mem": "2G", "idle_timeout": 28800},
                                     {"name": "gpu", "cpu": 2, "mem": "4G", "gpus": 1, "idle_timeout": 3600}]))
    env = {"PROFILES": str(profiles), "GPU_DEVICES": "0,1"}
    default = make_spawner(tmp_path, user_options={"profile": "cpu"}, **env)
    gpu = make_spawner(tmp_path, user_options={"profile": "gpu"}, server="gpu", user=default.user, **env)
    run(default.start())
    run(gpu.start())
    mine, named = created_for(fake_docker, "devhub-user-alice"), created_for(fake_docker, "devhub-user-alice-s-gpu")
    assert mine["host_config"]["NetworkMode"] == "devhub-user-alice"
    assert named["host_config"]["NetworkMode"] == "devhub-user-alice-s-gpu"
    assert named["hostname"] == "devhub-alice-s-gpu"
    assert named["labels"] == {"devhub.user": "alice", "devhub.server": "gpu", "devhub.role": "user-server",
                               "devhub.gpus": "0"}
    assert "devhub.server" not in mine["labels"] and "DeviceRequests" not in mine["host_config"]
    # One home per person: both mount the same volume.
    for kw in (mine, named):
        assert "devhub-home-alice:/home/jovyan:rw" in kw["host_config"]["Binds"]
    assert fake_docker.networks_["devhub-user-alice-s-gpu"]["labels"]["devhub.server"] == "gpu"
    # The profile's idle timeout is in each server's state, for devhub.culler.
    assert default.get_state()["idle_timeout"] == 28800 and gpu.get_state()["idle_timeout"] == 3600
    assert gpu.get_state()["gpus"] == "0"
    # GPUs are held per server: a second GPU server of alice's gets the other device.
    second = make_spawner(tmp_path, user_options={"profile": "gpu"}, server="gpu2", user=default.user, **env)
    run(second.start())
    assert created_for(fake_docker, "devhub-user-alice-s-gpu2")["labels"]["devhub.gpus"] == "1"
    # Stopping one leaves the other running; removing the stopped one takes its network only.
    run(gpu.stop())
    assert not any(c["Name"] == "devhub-user-alice-s-gpu" for c in fake_docker.containers_.values())
    run(gpu.delete_forever())
    assert "devhub-user-alice-s-gpu" not in fake_docker.networks_
    assert "devhub-user-alice" in fake_docker.networks_
    assert any(c["Name"] == "devhub-user-alice" for c in fake_docker.containers_.values())


def test_invalid_server_name_is_refused_with_the_rule(tmp_path, fake_docker):
    for bad in ("Exp1", "-x", "a" * 33, "a b", "a+b"):
        sp = make_spawner(tmp_path, server=bad)
        with pytest.raises(names.InvalidServerName, match=r"invalid server name .*: use 1-32 characters of a-z, 0-9 and '-'"):
            run(sp.start())
    assert not any(c[0] == "create_container" for c in fake_docker.calls)


def test_removing_a_named_server_keeps_the_home(tmp_path, fake_docker):
    fake_docker.volumes_["devhub-home-alice"] = {"Name": "devhub-home-alice"}
    sp = make_spawner(tmp_path, server="exp1")
    run(sp.start())
    run(sp.stop())
    run(sp.delete_forever())
    assert "devhub-home-alice" in fake_docker.volumes_


def test_the_spawn_audit_line_says_where_the_start_spent_its_time(tmp_path, fake_docker, capsys):
    """The bench's per-step breakdown (bench/stack_bench.py) reads these from the hub's log."""
    sp = make_spawner(tmp_path)
    before = time.time()
    run(sp.start())
    (spawn,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                if line.startswith("{") and json.loads(line).get("event") == "spawn"]
    steps = spawn["steps"]
    assert set(steps) == {"began", "ssh_keys", "gpus", "network_create", "network_attach", "container",
                          "container_create", "container_start", "total"}
    assert before - 1 <= steps["began"] <= time.time()
    parts = sum(steps[name] for name in ("ssh_keys", "gpus", "network_create", "network_attach", "container"))
    assert 0 < parts <= steps["total"] + 0.0005  # each step is rounded to 0.1 ms
    # DockerSpawner's two calls are inside it (each rounded to 0.1 ms)
    assert steps["container_create"] + steps["container_start"] <= steps["container"] + 0.0002


def test_a_full_network_pool_is_a_clear_spawn_error(tmp_path, fake_docker):
    """Each server's network takes a /27 of USER_NETWORK_POOL; when none is left the spawn fails
    saying so (not Docker's "could not find an available, non-overlapping IPv4 address pool")."""
    first = make_spawner(tmp_path, username="first")
    first.network_pool = "192.168.77.0/26"  # room for two
    run(first.start())
    second = make_spawner(tmp_path, username="second")
    second.network_pool = "192.168.77.0/26"
    run(second.start())
    third = make_spawner(tmp_path, username="third")
    third.network_pool = "192.168.77.0/26"
    with pytest.raises(RuntimeError, match=r"No free /27 left in USER_NETWORK_POOL=192.168.77.0/26 for "
                                           r"devhub-user-third: give the hub a larger pool"):
        run(third.start())
    run(first.stop())  # its network is kept, but nothing of first's is on it: reclaimed for third
    run(third.start())
    assert "devhub-user-first" not in fake_docker.networks_ and "devhub-user-second" in fake_docker.networks_
    assert fake_docker.networks_["devhub-user-third"]["IPAM"]["Config"][0]["Subnet"] == "192.168.77.0/27"


def test_start_returns_once_the_server_answers(tmp_path, fake_docker, monkeypatch):
    """The spawner asks the new server's API URL (JupyterHub's own check) until it answers, so the
    hub's check passes at once; one that never answers fails the start clearly and frees its GPUs."""
    from test_hub_readiness import Booting

    started = fake_docker.start

    def start_on_localhost(container):
        started(container)
        for network in fake_docker._find(container)["NetworkSettings"]["Networks"].values():
            network["IPAddress"] = "127.0.0.1"

    monkeypatch.setattr(fake_docker, "start", start_on_localhost)
    booting = Booting(busy=3)
    try:
        sp = make_spawner(tmp_path, GPU_MODE="all")
        sp.port, sp.ready_poll_interval = booting.server_address[1], 0.01
        assert run(sp.start()) == ("127.0.0.1", booting.server_address[1])
        assert booting.paths == ["/user/alice/api"] * 4
    finally:
        booting.shutdown()
    never = Booting(busy=10**6)
    try:
        one_gpu = {"GPU_MODE": "1", "GPU_DEVICES": "0"}
        sp = make_spawner(tmp_path, username="bob", **one_gpu)
        sp.port, sp.ready_poll_interval, sp.http_timeout = never.server_address[1], 0.01, 1
        with pytest.raises(TimeoutError, match="did not answer at http://127.0.0.1:.*/user/bob/api within 1 s"):
            run(sp.start())
        run(sp.stop())  # as JupyterHub does after a failed start
        run(make_spawner(tmp_path, username="carol", **one_gpu).start())  # bob's GPU was given back
        assert created_for(fake_docker, "devhub-user-carol")["host_config"]["DeviceRequests"][0]["DeviceIDs"] == ["0"]
    finally:
        never.shutdown()


def test_a_kept_network_loses_a_service_the_settings_no_longer_attach(tmp_path, fake_docker):
    """A stopped server's network is kept with the peers it had; after the operator turns a service
    off (EGRESS=off, SSH_GATEWAY=0) the next start detaches that service's container from it, so the
    server cannot reach it any more."""
    egress_id = "e" * 64
    labels = {"com.docker.compose.project": "devhub", "com.docker.compose.service": "egress"}
    fake_docker.containers_[egress_id] = {"Id": egress_id, "Name": "egress", "Image": "sha256:egress",
                                          "Config": {"Labels": labels, "Env": []},
                                          "State": {"Status": "running", "Running": True}, "NetworkSettings": {"Networks": {}}}
    with_egress = make_spawner(tmp_path)
    with_egress.connect_services = ["hub", "proxy", "egress"]
    run(with_egress.start())
    network = fake_docker.networks_["devhub-user-alice"]
    assert egress_id in network["Containers"]
    run(with_egress.stop())
    without = make_spawner(tmp_path)  # the hub restarted with egress off
    without.connect_services = ["hub", "proxy"]
    run(without.start())
    assert ("disconnect", egress_id, "devhub-user-alice") in fake_docker.calls
    assert set(network["Containers"]) == {without.container_id, HUB_ID, PROXY_ID}
