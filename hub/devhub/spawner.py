"""DevhubSpawner: DockerSpawner configured for devhub's hardened, isolated user containers.

Everything DockerSpawner already does (create/start/stop/remove, internal IPs, volumes, cpu/mem
limits, extra_host_config/extra_create_kwargs) is used as is; this class only supplies per-user
defaults and adds:

- one Docker network per server (devhub.names.ServerObjects: USER_NETWORK_PREFIX + escaped name,
  plus "-s-" + the name of a named server; bridge, internal: no egress), created on start, with
  the hub and proxy containers of the same compose project attached (aliases: their compose
  service names, and HUB_CONNECT_HOST for the hub, attached in parallel); kept between stops, so a
  restart only starts a container, and removed with the server (delete_forever);
- GPU allocation (gpus.py), recorded in the container labels devhub.user / devhub.server / devhub.gpus;
- resource profiles on the spawn page when PROFILES is set, chosen per server; a profile's own idle
  timeout is kept in the server's state for devhub.culler;
- named servers (MAX_SERVERS_PER_USER): each has its own container and network, all of a user's
  servers mount the same home volume (one home per person);
- delete_forever(): a named server's network goes with it; when the user is deleted, the home
  volume is removed, archived or kept (ON_USER_DELETE);
- Docker API calls on docker_api_threads threads (DockerSpawner's own is one thread for the whole
  hub), and a prompt readiness check (devhub.readiness) before JupyterHub's own backoff;
- a hook for the container's authorized SSH keys (DEVHUB_SSH_AUTHORIZED_KEYS): by default only the
  SSH gateway's client key (SSH_GATEWAY_CLIENT_KEY_FILE); users' own keys are checked at the gateway;
- the SSH route for the gateway (ssh_route()): the container's address on its network and its SSH
  host key, read from the home volume once the container runs and kept in the spawner state;
- the egress proxy's settings for the server (devhub.egress), no external DNS, rotated logs;
- hardening applied last: an operator's extra_host_config adds settings, never removes the hardening;
- user names used literally where DockerSpawner renders templates (labels).

Its options are traits (`jupyterhub --help-all` lists them, with the variable each comes from):
devhub.config sets them from the environment, as it sets DockerSpawner's image, mem_limit and cpu_limit
and the Spawner's hub_connect_url (USERS_HUB_API_URL); a jupyterhub_config.d file overrides any one.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import io
import socket
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any as TAny
from urllib.parse import urlsplit

import docker.errors
import docker.types
from dockerspawner import DockerSpawner
from traitlets import (Any, Bool, Callable, Enum, Float, Instance, Integer, List, TraitError, Unicode, default, observe,
                       validate)

from . import audit, egress, gpus, names, readiness, subnets, timeline
from .settings import ON_USER_DELETE, SIZE, Profile, size_in_bytes
from .ssh_keys import InvalidKey, parse_public_key
from .stops import STOPS

HOME = "/home/jovyan"
DATASETS = "/datasets"
LABEL_USER = gpus.LABEL_USER
LABEL_SERVER = gpus.LABEL_SERVER  # a named server's name; absent on the default server
LABEL_ROLE = "devhub.role"  # user-server | user-network | home | home-archive | archive-helper
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
# Capabilities the archive helper needs to copy a home volume verbatim (owners, modes, times).
ARCHIVE_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"]
# The user image keeps its sshd host key on the home volume (images/dev-gpu/README.md).
SSH_HOST_KEY_PUB = HOME + "/.local/share/devhub/ssh/ssh_host_ed25519_key.pub"
SSH_CONTAINER_PORT = 2222
GATEWAY_SERVICE = "sshgw"  # the SSH gateway's compose service name
FRONT_SERVICE = "nginx"  # its internal listener is user servers' way to the hub's API (USERS_HUB_API_URL)


# Subnets are chosen and networks created one at a time in this process (see _create_network).
_NETWORK_CREATION = asyncio.Lock()
# Networks of servers being started in this process: not idle, even before their container exists.
_STARTING: set[str] = set()

# What every user container runs under, whatever the settings (the image tests run the image under
# the same: tests/conftest.py HARDENED).
CONTAINER_USER = "1000:100"  # jovyan:users
LOCKED_DOWN: dict[str, TAny] = {"cap_drop": ["ALL"], "cap_add": [], "privileged": False,
                                "security_opt": ["no-new-privileges"], "read_only": True}
RUN_TMPFS = "rw,nosuid,nodev,noexec,uid=1000,gid=100,mode=0755,size=64m"  # supervisord's and sshd's sockets


def tmp_tmpfs(size: int) -> str:
    return f"rw,nosuid,nodev,size={size},mode=1777"


def gateway_client_key(spawner: "DevhubSpawner") -> str:
    """Default for DevhubSpawner.ssh_authorized_keys: the SSH gateway's client public key, read from
    DevhubSpawner.gateway_client_key_file at each start (the gateway writes it); none, with a warning,
    if the file is missing or invalid, or without the gateway (DevhubSpawner.ssh_gateway)."""
    if not spawner.ssh_gateway:
        return ""
    path = Path(spawner.gateway_client_key_file)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        spawner.log.warning(
            "SSH gateway client key %s is not readable (%s): %s's server gets no SSH key, SSH through the "
            "gateway will not work until it is restarted", path, exc.strerror or exc, spawner.user.name,
        )
        return ""
    try:
        return parse_public_key(text.strip()).line
    except InvalidKey as exc:
        spawner.log.warning("SSH gateway client key %s is invalid (%s): %s's server gets no SSH key", path, exc, spawner.user.name)
        return ""


def literal(text: str) -> str:
    """`text` protected from DockerSpawner's template rendering (str.format): a user named `{0}` or
    `{username}` keeps that name in labels, and the spawn does not fail on it."""
    return text.replace("{", "{{").replace("}", "}}")


def hardened_last(extra):
    """extra_host_config for DockerSpawner: `extra` (a dict, or a callable(spawner) that may be async)
    with DevhubSpawner.hardened_host_config() applied on top, key by key."""

    async def host_config(spawner) -> dict:
        value = extra(spawner) if callable(extra) else dict(extra)
        if inspect.isawaitable(value):
            value = await value
        return {**(value or {}), **spawner.hardened_host_config()}

    host_config.devhub_hardened_last = True
    return host_config


class SshHostKeyState:
    """Spawner mixin: keeps the running container's sshd host key in the spawner state, so the SSH
    route survives hub restarts. Mixed in before the Spawner class."""

    # The sshd host key of the running container ("ssh-ed25519 AAAA..."), "" until read.
    ssh_host_key: str = ""

    def get_state(self):
        state = super().get_state()
        if self.ssh_host_key:
            state["ssh_host_key"] = self.ssh_host_key
        return state

    def load_state(self, state):
        super().load_state(state)
        self.ssh_host_key = state.get("ssh_host_key", "")

    def clear_state(self):
        super().clear_state()
        self.ssh_host_key = ""


class DevhubSpawner(SshHostKeyState, DockerSpawner):
    # ---- options (devhub.config sets them from the variables named in their help) ----

    profiles = List(
        Instance(Profile),
        help="Resource profiles (devhub.settings.Profile) offered on the spawn page, the first preselected; "
        "none: no form, every server gets mem_limit, cpu_limit and gpu_mode (PROFILES).",
    ).tag(config=True)

    gpu_mode = Unicode(
        "none", help="GPUs of a server without a profile: none, all, or N of gpu_devices per server (GPU_MODE)."
    ).tag(config=True)

    gpu_devices = List(
        Unicode(), help="The GPUs handed out N per server (gpu_mode N, or a profile's), as indexes or UUIDs (GPU_DEVICES)."
    ).tag(config=True)

    pids_limit = Integer(1024, min=1, help="Processes per server (USER_PIDS_LIMIT).").tag(config=True)

    shm_size = Unicode("1G", help="Size of /dev/shm per server, e.g. 1G or 512m (USER_SHM_SIZE).").tag(config=True)

    tmp_size = Unicode("2G", help="Size of /tmp (in memory) per server, e.g. 2G or 512m (USER_TMP_SIZE).").tag(
        config=True
    )

    datasets_source = Unicode(
        "devhub-datasets", help="A volume or absolute host path, mounted read-only at /datasets (DATASETS_SOURCE)."
    ).tag(config=True)

    home_volume_prefix = Unicode(
        "devhub-home-", help="Users' home volumes are named <prefix><escaped user name> (USER_VOLUME_PREFIX)."
    ).tag(config=True)

    network_prefix = Unicode(
        "devhub-user-", help="Servers' containers and networks are named <prefix><escaped user name>[-s-<server>] "
        "(USER_NETWORK_PREFIX)."
    ).tag(config=True)

    health_interval = Integer(
        30, min=1, help="Seconds between Docker's health checks of a running server. The image's own 2 s "
        "suits a container run alone; each check is an exec in the container, an HTTP request and an sshd "
        "handshake (about 0.1 s of CPU), so at 2 s 25 idle servers keep one core busy. The hub does not "
        "wait for this status: it checks a new server itself.",
    ).tag(config=True)

    network_pool = Unicode(
        "10.213.0.0/16", help="Private IPv4 network each server's internal network takes a /27 of "
        "(USER_NETWORK_POOL); Docker's own default pools hold only about 30 networks.",
    ).tag(config=True)

    @validate("network_pool")
    def _valid_network_pool(self, proposal):
        try:
            return str(subnets.parse_pool(proposal["value"]))
        except ValueError as exc:
            raise TraitError(f"network_pool {proposal['value']!r}: {exc}") from None

    on_user_delete = Enum(
        ON_USER_DELETE, "remove",
        help="A deleted user's home volume: remove, archive (a copy is kept) or keep (ON_USER_DELETE).",
    ).tag(config=True)

    extra_ca = Unicode(
        "", help="PEM certificates users' servers trust besides the system's, as DEVHUB_EXTRA_CA (USER_EXTRA_CA).",
    ).tag(config=True)

    egress_policy = Instance(
        egress.Policy, args=(),
        help="What users' servers reach on the internet: a devhub.egress.Policy (EGRESS, EGRESS_ALLOW, ...).",
    ).tag(config=True)

    hub_connect_host = Unicode(
        "hub", help="The name user servers reach the hub by when hub_connect_url is unset (HUB_CONNECT_HOST)."
    ).tag(config=True)

    ssh_gateway = Bool(
        True, help="Whether the SSH gateway is attached to user networks and its key let in (SSH_GATEWAY)."
    ).tag(config=True)

    gateway_client_key_file = Unicode(
        "/srv/sshgw-state/gateway_client_key.pub",
        help="The SSH gateway's client public key, read at each start (SSH_GATEWAY_CLIENT_KEY_FILE).",
    ).tag(config=True)

    docker_api_threads = Integer(
        8, min=1, help="Docker API calls the hub makes at once, for all servers together. DockerSpawner's "
        "own is one thread, which queues 20 users' container starts and network attaches behind each other.",
    ).tag(config=True)

    ready_poll_interval = Float(
        0.05, min=0, help="Seconds between the spawner's own checks that a new server answers HTTP, before "
        "JupyterHub checks it (devhub.readiness); 0 leaves it to JupyterHub's backoff (0.2 s doubling to 5 s).",
    ).tag(config=True)

    @property
    def executor(self) -> ThreadPoolExecutor:
        """One pool per hub for every server's Docker API calls (DockerSpawner calls them through it)."""
        cls = type(self)
        if cls._executor is None:
            cls._executor = ThreadPoolExecutor(self.docker_api_threads, thread_name_prefix="docker-api")
        return cls._executor

    @validate("gpu_mode")
    def _validate_gpu_mode(self, proposal):
        value = proposal["value"]
        if value in ("none", "all") or (value.isdigit() and int(value) > 0):
            return value
        raise TraitError(f"DevhubSpawner.gpu_mode={value!r} is invalid: expected none, all or a whole number > 0")

    @validate("shm_size", "tmp_size")
    def _validate_size(self, proposal):
        value = proposal["value"]
        if SIZE.fullmatch(value):
            return value
        name = proposal["trait"].name
        raise TraitError(f"DevhubSpawner.{name}={value!r} is invalid: expected a size like 2G or 512m")

    ssh_authorized_keys = Callable(
        gateway_client_key,
        help="""Callable(spawner) -> str (may be async): the SSH public keys allowed into the
        container, one per line, passed as DEVHUB_SSH_AUTHORIZED_KEYS (default: the gateway's).""",
    ).tag(config=True)

    gpu_pool = Any(help="gpus.GpuPool shared by all spawners (default: one per hub, from Docker labels).").tag(
        config=True
    )

    connect_services = List(
        help="Compose services (of the hub's compose project) attached to each user network "
        "(default: hub, proxy, and the SSH gateway sshgw unless SSH_GATEWAY=0).",
    ).tag(config=True)

    egress_key = Unicode(
        "", help="Key the per-user egress proxy credentials derive from (devhub.egress; set by devhub.config)."
    ).tag(config=True)

    @default("connect_services")
    def _default_connect_services(self):
        services = ["hub", "proxy"] + ([GATEWAY_SERVICE] if self.ssh_gateway else [])
        services += [egress.SERVICE] if self.egress_policy.enabled else []
        return services + ([FRONT_SERVICE] if self.hub_connect_url else [])

    @property
    def hub_api_host(self) -> str:
        """The name user servers resolve for the hub's API: hub_connect_url's host (USERS_HUB_API_URL,
        nginx's internal listener), "" when they reach the hub itself by hub_connect_host."""
        return urlsplit(self.hub_connect_url or "").hostname or ""

    def peer_aliases(self, service: str) -> list[str]:
        """The names user servers know a peer by: the egress proxy, and the hub's API (nginx's
        internal listener with hub_connect_url, else the hub itself); the others are nameless there."""
        if service == egress.SERVICE:
            return [service]
        if self.hub_connect_url:
            return [self.hub_api_host] if service == FRONT_SERVICE else []
        return list(dict.fromkeys(["hub", self.hub_connect_host])) if service == "hub" else [service]

    # ---- DockerSpawner's settings, per server ----

    @property
    def objects(self) -> names.ServerObjects:
        """The Docker names of this server's container, network and host, and of the user's home."""
        return names.ServerObjects(user=self.user.name, server=self.name,
                                   network_prefix=self.network_prefix, volume_prefix=self.home_volume_prefix)

    @default("object_name")
    def _object_name_default(self):
        return self.objects.container

    @observe("image")
    def _image_changed(self, change):
        # Replaces DockerSpawner's handler, which re-renders the name from its template on image
        # changes: ours does not depend on the image, and stays unset (not checked) until it is used.
        pass

    @default("network_name")
    def _default_network_name(self):
        return self.objects.network

    @default("use_internal_ip")
    def _default_use_internal_ip(self):
        return True

    @default("remove")
    def _default_remove(self):
        return True

    @default("volumes")
    def _default_volumes(self):
        return {self.home_volume: {"bind": HOME, "mode": "rw"}}

    @default("read_only_volumes")
    def _default_read_only_volumes(self):
        return {self.datasets_source: DATASETS}

    @default("extra_host_config")
    def _default_extra_host_config(self):
        return hardened_last({})

    @validate("extra_host_config")
    def _validate_extra_host_config(self, proposal):
        # An operator's extra_host_config (jupyterhub_config.d) adds to the container's host settings;
        # it never replaces the hardening, which goes on top of it.
        value = proposal["value"]
        return value if getattr(value, "devhub_hardened_last", False) else hardened_last(value)

    @default("extra_create_kwargs")
    def _default_extra_create_kwargs(self):
        # The host name says whose server this is (shells, logs), e.g. devhub-alice.
        # DockerSpawner renders these with str.format: braces in a user name stay literal.
        return lambda spawner: {
            "user": CONTAINER_USER,
            "labels": {key: literal(value) for key, value in spawner.container_labels().items()},
            "hostname": spawner.objects.hostname,
            # The image's own check (test and command) at the hub's pace: Docker keeps the rest.
            "healthcheck": {"interval": spawner.health_interval * 1_000_000_000},
        }

    @default("options_form")
    def _default_options_form(self):
        return self.profiles_form if self.profiles else ""

    @default("options_from_form")
    def _default_options_from_form(self):
        return self.profile_from_form

    @property
    def home_volume(self) -> str:
        return self.objects.home

    # ---- what the container is created with ----

    _gpu: gpus.GpuRequest | None = None
    _ssh_keys: str = ""

    def hardened_host_config(self) -> dict[str, TAny]:
        config: dict[str, TAny] = {
            **LOCKED_DOWN,
            "network_mode": self.network_name,  # the server's own internal network, never host or bridge
            "tmpfs": {"/tmp": tmp_tmpfs(size_in_bytes(self.tmp_size)), "/run": RUN_TMPFS},
            "pids_limit": self.pids_limit,
            "shm_size": self.shm_size,
            # A chatty server cannot fill the host's disk with its log (like the stack's own services).
            "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
            # No external name resolution from user servers (devhub.egress.UNANSWERED_DNS).
            "dns": [egress.UNANSWERED_DNS],
            "dns_opt": list(egress.DNS_OPTIONS),
        }
        gpu = self._gpu or gpus.request_for("none")
        if gpu.device_requests:
            config["device_requests"] = list(gpu.device_requests)
        return config

    def owner_labels(self, role: str) -> dict[str, str]:
        labels = {LABEL_USER: self.user.name, LABEL_ROLE: role}
        if self.name:
            labels[LABEL_SERVER] = self.name
        return labels

    def container_labels(self) -> dict[str, str]:
        labels = self.owner_labels("user-server")
        if self._gpu is not None:
            labels.update(self._gpu.labels)
        return labels

    def get_env(self):
        env = super().get_env()
        env["DEVHUB_SSH_AUTHORIZED_KEYS"] = self._ssh_keys
        env["DEVHUB_USER"] = self.user.name
        if self.extra_ca:
            env["DEVHUB_EXTRA_CA"] = self.extra_ca
        env.update(self.egress_environment())
        env.update((self._gpu or gpus.request_for("none")).env)
        return env

    def egress_environment(self) -> dict[str, str]:
        """Proxy settings for this user's server (devhub.egress), with the hub reached directly."""
        if self.egress_policy.enabled and not self.egress_key:
            self.log.warning("No egress key: %s's server gets no internet proxy", self.user.name)
            return {}
        direct = ((self.hub_api_host,) if self.hub_connect_url
                  else tuple(dict.fromkeys(("hub", self.hub_connect_host))))
        return egress.user_environment(self.egress_policy, self.egress_key, names.escape(self.user.name), direct)

    # ---- profiles ----

    def profile(self) -> Profile | None:
        """The profile chosen in user_options (validated again: the API can bypass the form)."""
        if not self.profiles:
            return None
        name = (self.user_options or {}).get("profile") or self.profiles[0].name
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise ValueError(f"unknown profile {name!r}; choose one of " + ", ".join(p.name for p in self.profiles))

    def profiles_form(self, spawner=None) -> str:
        options = []
        for i, p in enumerate(self.profiles):
            gpu = {"none": "no GPU", "all": "all GPUs"}.get(p.gpus, f"{p.gpus} GPU(s)")
            label = f"{p.display_name} ({p.cpu:g} CPU, {p.mem} memory, {gpu})"
            selected = " selected" if i == 0 else ""
            options.append(f'<option value="{html.escape(p.name)}"{selected}>{html.escape(label)}</option>')
        return (
            '<label for="devhub-profile">Resources</label>\n'
            '<select class="form-control" id="devhub-profile" name="profile">\n'
            + "\n".join(options)
            + "\n</select>"
        )

    def profile_from_form(self, formdata) -> dict[str, str]:
        value = formdata.get("profile", [""])
        name = value[0] if isinstance(value, list) and value else str(value)
        if self.profiles and name not in {p.name for p in self.profiles}:
            raise ValueError(f"unknown profile {name!r}")
        return {"profile": name} if name else {}

    def apply_profile(self) -> str:
        """Apply the chosen profile's cpu/mem; return the GPU mode for this start."""
        profile = self.profile()
        if profile is None:
            return self.gpu_mode
        self.cpu_limit = profile.cpu
        self.mem_limit = profile.mem
        self._idle_timeout = profile.idle_timeout
        return profile.gpus

    # ---- GPUs ----

    def _pool(self) -> gpus.GpuPool:
        if self.gpu_pool is None:
            self.gpu_pool = gpus.shared_pool(self.gpu_devices, self.client)
        return self.gpu_pool

    async def allocate_gpus(self, mode: str) -> gpus.GpuRequest:
        if mode in ("none", "all"):
            return gpus.request_for(mode)
        pool = self._pool()
        loop = asyncio.get_running_loop()
        devices = await loop.run_in_executor(self.executor, pool.claim, self.objects.key, int(mode))
        return gpus.request_for("ids", devices)

    def release_gpus(self) -> None:
        if self._gpu is not None and self._gpu.devices:
            self._pool().release(self.objects.key)
        self._gpu = None

    # ---- per-user network ----

    async def _compose_peers(self) -> tuple[dict[str, list[str]], set[str]]:
        """({container id: [aliases]} of the services to attach (hub, proxy, ...), the ids of the
        project's other containers: a kept network may hold one that the settings no longer want,
        e.g. the egress proxy after EGRESS=off)."""
        try:
            me = await self.docker("inspect_container", socket.gethostname())
        except docker.errors.NotFound:
            self.log.warning("The hub is not running in a Docker container; user networks get no hub/proxy attached")
            return {}, set()
        project = (me["Config"].get("Labels") or {}).get(COMPOSE_PROJECT)
        if not project:
            self.log.warning("The hub container has no %s label; attaching only the hub itself", COMPOSE_PROJECT)
            return {me["Id"]: self.peer_aliases("hub")}, set()
        # One query for the whole project (this runs on every poll), then pick the services.
        peers: dict[str, list[str]] = {}
        others: set[str] = set()
        for c in await self.docker("containers", filters={"label": f"{COMPOSE_PROJECT}={project}"}):
            service = (c.get("Labels") or {}).get(COMPOSE_SERVICE)
            if service in self.connect_services:
                peers[c["Id"]] = self.peer_aliases(service)
            else:
                others.add(c["Id"])
        if me["Id"] not in peers:
            peers[me["Id"]] = self.peer_aliases("hub")
            others.discard(me["Id"])
        return peers, others

    async def ensure_network(self, steps: timeline.Steps | None = None) -> str:
        """Create the server's internal network if missing and attach the hub and proxy to it (those
        missing, in parallel: each attach is a network namespace change in dockerd)."""
        steps = steps or timeline.Steps()
        name = self.network_name
        with steps.step("network_create"):
            found = [n for n in await self.docker("networks", names=[name]) if n["Name"] == name]
            network_id = found[0]["Id"] if found else await self._create_network(name)
        with steps.step("network_attach"):
            attached = (await self.docker("inspect_network", network_id)).get("Containers") or {}
            peers, others = await self._compose_peers()
            missing = {cid: aliases for cid, aliases in peers.items() if cid not in attached}
            unwanted = others & set(attached)
            for cid in unwanted:
                self.log.info("Detaching %s from %s: the settings no longer attach it", cid[:12], name)
            await asyncio.gather(*(self._attach(cid, network_id, aliases) for cid, aliases in missing.items()),
                                 *(self._detach(cid, network_id) for cid in unwanted))
        return network_id

    async def _detach(self, container_id: str, network_id: str) -> None:
        try:
            await self.docker("disconnect_container_from_network", container_id, network_id, force=True)
        except docker.errors.NotFound:
            pass  # gone meanwhile

    async def _attach(self, container_id: str, network_id: str, aliases: list[str]) -> None:
        try:
            await self.docker("connect_container_to_network", container_id, network_id, aliases=aliases)
        except docker.errors.APIError as exc:
            if exc.status_code not in (403, 409) or "already exists" not in str(exc):
                raise

    async def _create_network(self, name: str) -> str:
        """Create the server's network on a free subnet of network_pool. The hub creates networks one
        at a time; another deployment on the same engine may take the same subnet in between, and
        Docker then refuses the overlap, so the next free one is tried."""
        pool = subnets.parse_pool(self.network_pool)
        async with _NETWORK_CREATION:
            for _ in range(8):
                subnet = subnets.free_subnet(pool, subnets.used_subnets(await self.docker("networks")))
                if subnet is None and await self._reclaim_idle_network():
                    continue
                if subnet is None:
                    raise RuntimeError(f"No free /{subnets.SUBNET_PREFIX} left in USER_NETWORK_POOL={pool} for "
                                       f"{name}: give the hub a larger pool")
                try:
                    created = await self.docker(
                        "create_network", name, driver="bridge", internal=True, check_duplicate=True,
                        labels=self.owner_labels("user-network"),
                        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                            subnet=str(subnet), gateway=subnets.gateway(subnet))]),
                    )
                except docker.errors.APIError as exc:
                    if exc.status_code == 409:  # created meanwhile under this name (another hub process)
                        return (await self.docker("inspect_network", name))["Id"]
                    if "overlap" in str(exc).lower():  # that subnet was taken meanwhile
                        continue
                    raise
                self.log.info("Created network %s (%s) for %s", name, subnet, self.user.name)
                return created["Id"]
        raise RuntimeError(f"Could not create network {name}: every free subnet of {pool} was taken meanwhile")

    async def _reclaim_idle_network(self) -> bool:
        """Stopped servers keep their networks; when the pool is full, remove one that nothing but
        the hub's own services is attached to (its server is stopped), so its subnet is free again."""
        peers = set((await self._compose_peers())[0])
        for listed in await self.docker("networks", filters={"label": f"{LABEL_ROLE}=user-network"}):
            if listed["Name"] in _STARTING:
                continue
            network = await self.docker("inspect_network", listed["Id"])
            if set(network.get("Containers") or {}) <= peers:
                self.log.info("USER_NETWORK_POOL is full: removing %s, a stopped server's network", listed["Name"])
                return await self._remove_network(network)
        return False

    async def remove_network(self) -> None:
        """Detach everything from the server's network and remove it (best effort, logged)."""
        try:
            network = await self.docker("inspect_network", self.network_name)
        except docker.errors.NotFound:
            return
        await self._remove_network(network)

    async def _remove_network(self, network: dict) -> bool:
        name = network["Name"]
        try:
            await asyncio.gather(*(self._detach(cid, network["Id"]) for cid in network.get("Containers") or {}))
            await self.docker("remove_network", network["Id"])
            self.log.info("Removed network %s", name)
            return True
        except docker.errors.APIError as exc:
            self.log.warning("Could not remove network %s: %s", name, exc)
            return False

    async def poll(self):
        status = await super().poll()
        if status is None and self.object_id:
            # A recreated hub or proxy container is not attached to the networks of servers that
            # kept running; re-attach (idempotent, one inspect when nothing is missing).
            try:
                await self.ensure_network()
            except Exception as exc:  # noqa: BLE001 - polling must not fail on this
                self.log.warning("Could not check network %s: %s", self.network_name, exc)
        return status

    async def get_command(self):
        """DockerSpawner's, but an image without CMD (the user image: `CMD []`, stored as null) works:
        devhub-start then runs its default with the spawner's arguments."""
        if self.cmd:
            return self.cmd + self.get_args()
        image_info = await self.docker("inspect_image", self.image)
        return list(image_info["Config"].get("Cmd") or []) + self.get_args()

    # ---- SSH route (for the gateway) ----

    def _read_container_file(self, path: str, limit: int = 16384) -> bytes | None:
        """A regular file from the running container (through the Docker API), None if absent."""
        try:
            stream, _ = self.client.get_archive(self.container_id, path)
        except docker.errors.NotFound:
            return None
        data = bytearray()
        for chunk in stream:
            data += chunk
            if len(data) > limit + 4096:
                raise ValueError(f"{path} is larger than {limit} bytes")
        with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
            member = tar.next()
            # A symlink or anything else planted in the user's home is not followed.
            if member is None or not member.isfile() or member.size > limit:
                raise ValueError(f"{path} is not a regular file of at most {limit} bytes")
            return tar.extractfile(member).read()

    async def fetch_ssh_host_key(self) -> str:
        """Read the container's ed25519 host public key from its home (once sshd has generated it)."""
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(self.executor, self._read_container_file, SSH_HOST_KEY_PUB)
        except (docker.errors.APIError, ValueError, tarfile.TarError) as exc:
            self.log.warning("Cannot read the SSH host key of %s: %s", self.object_name, exc)
            return ""
        if data is None:
            return ""
        try:
            key = parse_public_key(data.decode("utf-8", errors="replace").strip())
        except InvalidKey as exc:
            self.log.warning("The SSH host key in %s of %s is invalid: %s", SSH_HOST_KEY_PUB, self.object_name, exc)
            return ""
        if key.key_type != "ssh-ed25519":
            self.log.warning("The SSH host key of %s is %s, expected ssh-ed25519", self.object_name, key.key_type)
            return ""
        return f"{key.key_type} {key.blob}"

    async def ssh_route(self) -> dict | None:
        """{"host", "port", "host_key", "user", "container"} of the running server's sshd, None when not running.

        host is the container's IP on the user's network (the gateway is attached to it), else the
        container name; host_key is "" until the container has written it."""
        if not self.container_id or self.server is None:
            return None
        if not self.ssh_host_key:
            self.ssh_host_key = await self.fetch_ssh_host_key()
        return {
            "host": self.server.ip or self.object_name,
            "port": SSH_CONTAINER_PORT,
            "host_key": self.ssh_host_key,
            "user": "jovyan",
            "container": self.object_name,
        }

    # The GPUs this server holds, in its state ("all", "0,1"; absent: none): the GPU idle culler
    # (devhub.culler) reads it through the REST API.
    # A profile's own idle timeout (seconds), in the state for devhub.culler, which culls per server.
    _idle_timeout: int = 0

    def get_state(self):
        state = super().get_state()
        held = gpus.held(self._gpu)
        if held:
            state["gpus"] = held
        if self._idle_timeout:
            state["idle_timeout"] = self._idle_timeout
        return state

    def load_state(self, state):
        super().load_state(state)
        self._idle_timeout = int(state.get("idle_timeout") or 0)

    def clear_state(self):
        super().clear_state()
        self._idle_timeout = 0

    async def start(self):
        names.check_server_name(self.name)  # the home page lets users type any name; say which are usable
        self.ssh_host_key = ""  # a new container: read it again once it runs
        STOPS.forget(self.objects.key)  # the last stop's reason is no news once the server runs again
        mode = self.apply_profile()
        steps = self._steps = timeline.Steps()
        with steps.step("ssh_keys"):
            keys = self.ssh_authorized_keys(self)
            self._ssh_keys = (await keys if inspect.isawaitable(keys) else keys) or ""
        with steps.step("gpus"):
            self._gpu = await self.allocate_gpus(mode)
        _STARTING.add(self.network_name)
        try:
            await self.ensure_network(steps)
            with steps.step("container"):  # DockerSpawner: create (or reuse) and start it
                started = await super().start()
            _STARTING.discard(self.network_name)  # its container is on it now
            if self.ready_poll_interval and not self.internal_ssl:  # with internal TLS, JupyterHub checks alone
                with steps.step("server_answers"):
                    await readiness.wait_until_answering(
                        self.readiness_url(*started), timeout=self.http_timeout, interval=self.ready_poll_interval)
        except BaseException:
            _STARTING.discard(self.network_name)
            self.release_gpus()
            raise
        audit.record("spawn", user=self.user.name, server=self.name or None, container=self.object_name,
                     image=self.image, gpus=self._gpu.devices if self._gpu else None, steps=steps.summary())
        return started

    _steps: timeline.Steps | None = None  # the start under way: DockerSpawner's create and start are steps of it

    async def create_object(self):
        with (self._steps or timeline.Steps()).step("container_create"):
            return await super().create_object()

    async def start_object(self):
        with (self._steps or timeline.Steps()).step("container_start"):
            return await super().start_object()

    def readiness_url(self, ip: str, port: int) -> str:
        """What JupyterHub requests to see that the new server is up (User._wait_up: its URL + "api")."""
        return f"http://{ip}:{port}{self.server.base_url if self.server else '/'}api"

    async def stop(self, now=False):
        """Stop the container; its network stays for the next start (delete_forever removes it)."""
        try:
            await super().stop(now=now)
        finally:
            self.release_gpus()
        audit.record("stop", user=self.user.name, server=self.name or None, container=self.object_name)

    # ---- user deletion ----

    async def delete_forever(self):
        """Called by JupyterHub when a named server is removed (its network goes) or the user is
        deleted (the default server's call: remove, archive or keep the home volume; devhub.deletion
        has stopped the user's other servers and deleted their SSH keys by then)."""
        if self.name:
            await self.remove_network()
            return
        policy = self.on_user_delete
        volume = self.home_volume
        await self.remove_network()
        if policy == "keep":
            self.log.info("User %s deleted; keeping home volume %s (ON_USER_DELETE=keep)", self.user.name, volume)
            return
        try:
            await self.docker("inspect_volume", volume)
        except docker.errors.NotFound:
            self.log.info("User %s deleted; home volume %s does not exist", self.user.name, volume)
            return
        if policy == "archive":
            archive = await self.archive_volume(volume)
            self.log.info("User %s deleted; home volume %s archived as %s", self.user.name, volume, archive)
        await self.docker("remove_volume", volume)
        self.log.info("User %s deleted; removed home volume %s", self.user.name, volume)

    async def _helper_image(self) -> str:
        """The hub's own image (has cp), else the user image."""
        try:
            me = await self.docker("inspect_container", socket.gethostname())
            return me["Image"]
        except docker.errors.NotFound:
            return self.image

    async def archive_volume(self, volume: str) -> str:
        """Copy `volume` into a new devhub-archive-<escaped>-<UTC timestamp> volume; return its name."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        archive = self.objects.archive(stamp)
        labels = {LABEL_USER: self.user.name, LABEL_ROLE: "home-archive", "devhub.archived-from": volume}
        await self.docker("create_volume", archive, labels=labels)
        host_config = self.client.create_host_config(
            binds={volume: {"bind": "/from", "mode": "ro"}, archive: {"bind": "/to", "mode": "rw"}},
            network_mode="none",
            cap_drop=["ALL"],
            cap_add=ARCHIVE_CAPS,
            security_opt=["no-new-privileges"],
            read_only=True,
        )
        helper = await self.docker(
            "create_container",
            await self._helper_image(),
            entrypoint=["cp", "-a", "/from/.", "/to/"],
            command=[],
            user="0:0",
            labels={LABEL_USER: self.user.name, LABEL_ROLE: "archive-helper"},
            host_config=host_config,
            name=self.objects.archiver,
        )
        try:
            await self.docker("start", helper["Id"])
            result = await self.docker("wait", helper["Id"], timeout=3600)
            if result.get("StatusCode") != 0:
                logs = await self.docker("logs", helper["Id"], tail=20)
                raise RuntimeError(
                    f"archiving {volume} into {archive} failed (exit {result.get('StatusCode')}): "
                    f"{logs.decode(errors='replace').strip()}; the home volume was kept"
                )
        finally:
            await self.docker("remove_container", helper["Id"], force=True)
        return archive
