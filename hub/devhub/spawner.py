"""DevhubSpawner: DockerSpawner configured for devhub's hardened, isolated user containers.

Everything DockerSpawner already does (create/start/stop/remove, internal IPs, volumes, cpu/mem
limits, extra_host_config/extra_create_kwargs) is used as is; this class only supplies per-user
defaults from the settings and adds:

- one Docker network per user (USER_NETWORK_PREFIX + escaped name, bridge, internal: no egress),
  created on start, with the hub and proxy containers of the same compose project attached
  (aliases: their compose service names, and HUB_CONNECT_HOST for the hub); removed on stop;
- GPU allocation (gpus.py), recorded in the container labels devhub.user / devhub.gpus;
- resource profiles on the spawn page when PROFILES is set;
- delete_forever(): the user's home volume is removed, archived or kept (ON_USER_DELETE) when the
  user is deleted;
- a hook for the container's authorized SSH keys (DEVHUB_SSH_AUTHORIZED_KEYS): by default only the
  SSH gateway's client key (SSH_GATEWAY_CLIENT_KEY_FILE); users' own keys are checked at the gateway;
- the SSH route for the gateway (ssh_route()): the container's address on its network and its SSH
  host key, read from the home volume once the container runs and kept in the spawner state;
- the egress proxy's settings for the server (devhub.egress), no external DNS, rotated logs;
- hardening applied last: an operator's extra_host_config adds settings, never removes the hardening;
- user names used literally where DockerSpawner renders templates (labels).
"""

from __future__ import annotations

import asyncio
import html
import inspect
import io
import socket
import tarfile
import time
from pathlib import Path
from typing import Any as TAny

import docker.errors
from dockerspawner import DockerSpawner
from traitlets import Any, Callable, List, Unicode, default, validate

from . import audit, egress, gpus, names
from .settings import Profile, Settings, size_in_bytes
from .ssh_keys import InvalidKey, parse_public_key
from .ssh_keystore import owner_of
from .stops import STOPS

HOME = "/home/jovyan"
DATASETS = "/datasets"
LABEL_USER = gpus.LABEL_USER
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


def gateway_client_key(spawner: "DevhubSpawner") -> str:
    """Default for DevhubSpawner.ssh_authorized_keys: the SSH gateway's client public key, read from
    SSH_GATEWAY_CLIENT_KEY_FILE at each start (the gateway writes it); none, with a warning, if the
    file is missing or invalid, or with SSH_GATEWAY=0."""
    s = spawner.s
    if not s.ssh_gateway:
        return ""
    path = Path(s.ssh_gateway_client_key_file)
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


def delete_user_ssh_keys(spawner) -> None:
    """User deletion: delete the user's SSH keys from spawner.ssh_key_store (if set)."""
    store = spawner.ssh_key_store
    if store is None:
        return
    orm_user = getattr(spawner.user, "orm_user", None)
    owner = owner_of(orm_user) if orm_user is not None else None
    removed = store.delete_user(owner, spawner.user.name)
    spawner.log.info("User %s deleted; removed %d SSH key(s)", spawner.user.name, removed)


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
    devhub_settings = Any(help="devhub.settings.Settings of this hub (set by devhub.config).").tag(config=True)

    ssh_authorized_keys = Callable(
        gateway_client_key,
        help="""Callable(spawner) -> str (may be async): the SSH public keys allowed into the
        container, one per line, passed as DEVHUB_SSH_AUTHORIZED_KEYS (default: the gateway's).""",
    ).tag(config=True)

    ssh_key_store = Any(
        None, help="devhub.ssh_keystore.KeyStore of users' SSH keys; the user's are deleted with the user."
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
        services = ["hub", "proxy"] + ([GATEWAY_SERVICE] if self.s.ssh_gateway else [])
        services += [egress.SERVICE] if self.s.egress.enabled else []
        return services + ([FRONT_SERVICE] if self.s.users_hub_api_url else [])

    def peer_aliases(self, service: str) -> list[str]:
        """The names user servers know a peer by: the egress proxy, and the hub's API (nginx's
        internal listener with USERS_HUB_API_URL, else the hub itself); the others are nameless there."""
        if service == egress.SERVICE:
            return [service]
        if self.s.users_hub_api_url:
            return [self.s.users_hub_api_host] if service == FRONT_SERVICE else []
        return list(dict.fromkeys(["hub", self.s.hub_connect_host])) if service == "hub" else [service]

    # ---- defaults derived from the settings ----

    @property
    def s(self) -> Settings:
        if self.devhub_settings is None:
            raise RuntimeError("DevhubSpawner.devhub_settings is not set (use devhub.config.configure)")
        return self.devhub_settings

    @default("image")
    def _default_image(self):
        return self.s.user_image

    @default("object_name")
    def _object_name_default(self):
        # Same prefix as the user's network: one setting names a deployment's per-user objects.
        return names.container_name(self.user.name, self.s.user_network_prefix)

    def _image_changed(self, change):
        # DockerSpawner re-renders the name from its template on image changes; ours does not
        # depend on the image.
        self.object_name = self._object_name_default()

    @default("network_name")
    def _default_network_name(self):
        return names.network_name(self.s.user_network_prefix, self.user.name)

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
        return {self.s.datasets_source: DATASETS}

    @default("mem_limit")
    def _default_mem_limit(self):
        return self.s.user_mem_limit

    @default("cpu_limit")
    def _default_cpu_limit(self):
        return self.s.user_cpu_limit

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
            "user": "1000:100",
            "labels": {key: literal(value) for key, value in spawner.container_labels().items()},
            "hostname": names.docker_name("devhub-", spawner.user.name),
        }

    @default("options_form")
    def _default_options_form(self):
        return self.profiles_form if self.s.profiles else ""

    @default("options_from_form")
    def _default_options_from_form(self):
        return self.profile_from_form

    @property
    def home_volume(self) -> str:
        return names.volume_name(self.s.user_volume_prefix, self.user.name)

    # ---- what the container is created with ----

    _gpu: gpus.GpuRequest | None = None
    _ssh_keys: str = ""

    def hardened_host_config(self) -> dict[str, TAny]:
        s = self.s
        config: dict[str, TAny] = {
            "cap_drop": ["ALL"],
            "cap_add": [],
            "privileged": False,
            "network_mode": self.network_name,  # the user's own internal network, never host or bridge
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": {
                "/tmp": f"rw,nosuid,nodev,size={size_in_bytes(s.user_tmp_size)},mode=1777",
                "/run": "rw,nosuid,nodev,noexec,uid=1000,gid=100,mode=0755,size=64m",
            },
            "pids_limit": s.user_pids_limit,
            "shm_size": s.user_shm_size,
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

    def container_labels(self) -> dict[str, str]:
        labels = {LABEL_USER: self.user.name, LABEL_ROLE: "user-server"}
        if self._gpu is not None:
            labels.update(self._gpu.labels)
        return labels

    def get_env(self):
        env = super().get_env()
        env["DEVHUB_SSH_AUTHORIZED_KEYS"] = self._ssh_keys
        env["DEVHUB_USER"] = self.user.name
        if self.s.user_extra_ca:
            env["DEVHUB_EXTRA_CA"] = self.s.user_extra_ca
        env.update(self.egress_environment())
        env.update((self._gpu or gpus.request_for("none")).env)
        return env

    def egress_environment(self) -> dict[str, str]:
        """Proxy settings for this user's server (devhub.egress), with the hub reached directly."""
        if self.s.egress.enabled and not self.egress_key:
            self.log.warning("No egress key: %s's server gets no internet proxy", self.user.name)
            return {}
        direct = ((self.s.users_hub_api_host,) if self.s.users_hub_api_url
                  else tuple(dict.fromkeys(("hub", self.s.hub_connect_host))))
        return egress.user_environment(self.s.egress, self.egress_key, names.escape(self.user.name), direct)

    # ---- profiles ----

    def profile(self) -> Profile | None:
        """The profile chosen in user_options (validated again: the API can bypass the form)."""
        if not self.s.profiles:
            return None
        name = (self.user_options or {}).get("profile") or self.s.profiles[0].name
        for profile in self.s.profiles:
            if profile.name == name:
                return profile
        raise ValueError(f"unknown profile {name!r}; choose one of " + ", ".join(p.name for p in self.s.profiles))

    def profiles_form(self, spawner=None) -> str:
        options = []
        for i, p in enumerate(self.s.profiles):
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
        if self.s.profiles and name not in {p.name for p in self.s.profiles}:
            raise ValueError(f"unknown profile {name!r}")
        return {"profile": name} if name else {}

    def apply_profile(self) -> str:
        """Apply the chosen profile's cpu/mem; return the GPU mode for this start."""
        profile = self.profile()
        if profile is None:
            return self.s.gpu_mode
        self.cpu_limit = profile.cpu
        self.mem_limit = profile.mem
        return profile.gpus

    # ---- GPUs ----

    def _pool(self) -> gpus.GpuPool:
        if self.gpu_pool is None:
            self.gpu_pool = gpus.shared_pool(self.s.gpu_devices, self.client)
        return self.gpu_pool

    async def allocate_gpus(self, mode: str) -> gpus.GpuRequest:
        if mode in ("none", "all"):
            return gpus.request_for(mode)
        pool = self._pool()
        loop = asyncio.get_running_loop()
        devices = await loop.run_in_executor(self.executor, pool.claim, self.user.name, int(mode))
        return gpus.request_for("ids", devices)

    def release_gpus(self) -> None:
        if self._gpu is not None and self._gpu.devices:
            self._pool().release(self.user.name)
        self._gpu = None

    # ---- per-user network ----

    async def _compose_peers(self) -> dict[str, list[str]]:
        """{container id: [aliases]} of the services to attach (hub, proxy) in the hub's compose project."""
        try:
            me = await self.docker("inspect_container", socket.gethostname())
        except docker.errors.NotFound:
            self.log.warning("The hub is not running in a Docker container; user networks get no hub/proxy attached")
            return {}
        project = (me["Config"].get("Labels") or {}).get(COMPOSE_PROJECT)
        if not project:
            self.log.warning("The hub container has no %s label; attaching only the hub itself", COMPOSE_PROJECT)
            return {me["Id"]: self.peer_aliases("hub")}
        # One query for the whole project (this runs on every poll), then pick the services.
        peers: dict[str, list[str]] = {}
        for c in await self.docker("containers", filters={"label": f"{COMPOSE_PROJECT}={project}"}):
            service = (c.get("Labels") or {}).get(COMPOSE_SERVICE)
            if service not in self.connect_services:
                continue
            peers[c["Id"]] = self.peer_aliases(service)
        if me["Id"] not in peers:
            peers[me["Id"]] = self.peer_aliases("hub")
        return peers

    async def ensure_network(self) -> str:
        """Create the user's internal network if missing and attach the hub and proxy to it."""
        name = self.network_name
        found = [n for n in await self.docker("networks", names=[name]) if n["Name"] == name]
        if found:
            network_id = found[0]["Id"]
        else:
            try:
                created = await self.docker(
                    "create_network",
                    name,
                    driver="bridge",
                    internal=True,
                    check_duplicate=True,
                    labels={LABEL_USER: self.user.name, LABEL_ROLE: "user-network"},
                )
                network_id = created["Id"]
                self.log.info("Created network %s for %s", name, self.user.name)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                network_id = (await self.docker("inspect_network", name))["Id"]
        attached = (await self.docker("inspect_network", network_id)).get("Containers") or {}
        for container_id, aliases in (await self._compose_peers()).items():
            if container_id in attached:
                continue
            try:
                await self.docker("connect_container_to_network", container_id, network_id, aliases=aliases)
            except docker.errors.APIError as exc:
                if exc.status_code not in (403, 409) or "already exists" not in str(exc):
                    raise
        return network_id

    async def remove_network(self) -> None:
        """Detach everything from the user's network and remove it (best effort, logged)."""
        name = self.network_name
        try:
            network = await self.docker("inspect_network", name)
        except docker.errors.NotFound:
            return
        try:
            for container_id in list(network.get("Containers") or {}):
                await self.docker("disconnect_container_from_network", container_id, network["Id"], force=True)
            await self.docker("remove_network", network["Id"])
            self.log.info("Removed network %s", name)
        except docker.errors.APIError as exc:
            self.log.warning("Could not remove network %s: %s", name, exc)

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
    # (devhub.gpu_culler) reads it through the REST API.
    def get_state(self):
        state = super().get_state()
        held = gpus.held(self._gpu)
        if held:
            state["gpus"] = held
        return state

    async def start(self):
        self.ssh_host_key = ""  # a new container: read it again once it runs
        STOPS.forget(self.user.name)  # the last stop's reason is no news once the server runs again
        mode = self.apply_profile()
        keys = self.ssh_authorized_keys(self)
        self._ssh_keys = (await keys if inspect.isawaitable(keys) else keys) or ""
        self._gpu = await self.allocate_gpus(mode)
        try:
            await self.ensure_network()
            started = await super().start()
        except BaseException:
            self.release_gpus()
            raise
        audit.record("spawn", user=self.user.name, server=self.name or None, container=self.object_name,
                     image=self.image, gpus=self._gpu.devices if self._gpu else None)
        return started

    async def stop(self, now=False):
        try:
            await super().stop(now=now)
        finally:
            self.release_gpus()
            await self.remove_network()
        audit.record("stop", user=self.user.name, server=self.name or None, container=self.object_name)

    # ---- user deletion ----

    async def delete_forever(self):
        """Called by JupyterHub when the user is deleted: remove, archive or keep the home volume."""
        delete_user_ssh_keys(self)
        policy = self.s.on_user_delete
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
            return self.s.user_image

    async def archive_volume(self, volume: str) -> str:
        """Copy `volume` into a new devhub-archive-<escaped>-<UTC timestamp> volume; return its name."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        archive = names.archive_volume_name(self.user.name, stamp)
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
            name=names.docker_name("devhub-archiver-", self.user.name),
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
