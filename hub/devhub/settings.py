"""The hub's settings: environment variables, validated once at start into a frozen dataclass.

Every problem raises SettingsError with a message that names the variable, the bad value and what
is allowed; jupyterhub_config.py prints it and the hub refuses to start.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from . import egress

PROVIDERS = ("github", "gitlab", "oidc", "demo")
ON_USER_DELETE = ("remove", "archive", "keep")
# subdomain: each user's server on its own origin (https://alice.<host>/), the only safe default;
# path: every server under the hub's origin (https://<host>/user/alice/), an explicit opt-in.
SERVER_ROUTING = ("subdomain", "path")
# Docker object names: what `docker volume/network create` accept.
DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# Docker memory sizes: 512m, 8G, 1073741824 (bytes).
SIZE = re.compile(r"^([0-9]+)([bkmg]?)$", re.IGNORECASE)
SIZE_FACTORS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]*$")  # "0", "GPU-<uuid>", "MIG-<uuid>"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message is meant for the operator."""


@dataclass(frozen=True)
class Profile:
    """A resource profile offered on the spawn page (PROFILES)."""

    name: str
    display_name: str
    cpu: float
    mem: str
    gpus: str  # "none", "all" or a positive integer as a string: same meaning as GPU_MODE


@dataclass(frozen=True)
class Settings:
    public_url: str = "https://devhub.localhost"
    server_routing: str = "subdomain"
    auth_provider: str = "demo"
    oauth_client_id: str = ""
    oauth_client_secret: str = field(default="", repr=False)
    gitlab_url: str = "https://gitlab.com"
    oidc_authorize_url: str = ""
    oidc_token_url: str = ""
    oidc_userdata_url: str = ""
    oidc_username_claim: str = "preferred_username"
    oidc_groups_claim: str = "groups"
    allowed_users: frozenset[str] = frozenset()
    admin_users: frozenset[str] = frozenset()
    allowed_orgs: frozenset[str] = frozenset()
    allowed_groups: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()
    demo_oidc_url: str = "http://oidc:8080"
    demo_oidc_public_url: str = "https://localhost/demo-idp"
    user_image: str = "devhub/dev-gpu:latest"
    user_mem_limit: str = "8G"
    user_cpu_limit: float = 2.0
    user_pids_limit: int = 1024
    user_shm_size: str = "1G"
    user_tmp_size: str = "2G"
    gpu_mode: str = "none"  # "none", "all" or a positive integer as a string
    gpu_devices: tuple[str, ...] = ()
    profiles: tuple[Profile, ...] = ()
    datasets_source: str = "devhub-datasets"
    user_volume_prefix: str = "devhub-home-"
    on_user_delete: str = "remove"
    idle_cull_timeout: int = 3600
    idle_cull_timeout_gpu: int = 0  # servers holding GPUs: their own, shorter idle timeout (0: none)
    spawn_timeout: int = 120
    user_network_prefix: str = "devhub-user-"
    hub_connect_host: str = "hub"
    hub_bind_host: str = ""  # resolved at start to the one address the hub listens on; "": all
    users_hub_api_url: str = ""  # how user servers reach the hub's API; "": http://<hub_connect_host>:8081
    proxy_api_url: str = "http://proxy:8001"
    proxy_auth_token_file: str = "/srv/proxy-secret/auth_token"
    ssh_port: int = 2222
    data_dir: str = "/srv/jupyterhub"
    ssh_gateway: bool = True
    ssh_gateway_token_file: str = "/srv/sshgw-secret/api_token"
    ssh_gateway_token_gid: int | None = None  # the group the gateway reads its token by (it runs as another user)
    ssh_gateway_client_key_file: str = "/srv/sshgw-state/gateway_client_key.pub"
    ssh_max_keys_per_user: int = 10
    egress: egress.Policy = egress.Policy()
    egress_key_file: str = "/srv/egress-secret/egress_key"
    user_extra_ca: str = field(default="", repr=False)  # PEM certificates users' servers trust
    user_home_soft_limit: int = 0  # bytes; a user above it is warned (0: no limit)
    disk_usage_interval: int = 300  # seconds between measurements of the home volumes
    hub_disk_reserve: int = 256 * 1024**2  # bytes kept free for the hub's database (0: none)
    metrics_token_file: str = "/srv/metrics-secret/api_token"  # Prometheus' read:metrics token
    metrics_token_gid: int | None = None  # the group Prometheus reads it by
    metrics_user_labels: bool = True  # per-user series in devhub's metrics (off: sums, for large teams)
    recent_login_seconds: int = 600  # SERVER_ROUTING=path: SSH key changes and new tokens need a login this recent

    @property
    def is_demo(self) -> bool:
        return self.auth_provider == "demo"

    @property
    def users_hub_api_host(self) -> str:
        """The name user servers resolve for the hub's API ("" when they use hub_connect_host)."""
        return urlsplit(self.users_hub_api_url).hostname or ""

    @property
    def subdomains(self) -> bool:
        return self.server_routing == "subdomain"

    @property
    def may_hold_gpus(self) -> bool:
        """Whether any server can get a GPU (GPU_MODE, or a profile)."""
        return self.gpu_mode != "none" or any(p.gpus != "none" for p in self.profiles)

    @property
    def gpus_per_server(self) -> int:
        """N for GPU_MODE=N, else 0."""
        return int(self.gpu_mode) if self.gpu_mode.isdigit() else 0


def _error(var: str, value: str, allowed: str) -> SettingsError:
    return SettingsError(f"{var}={value!r} is invalid: {allowed}")


def _url(env: Mapping[str, str], var: str, default: str = "", *, required: bool = False, why: str = "") -> str:
    value = env.get(var, "").strip() or default
    if not value:
        if required:
            raise SettingsError(f"{var} is required{why}: set it to an http(s) URL")
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise _error(var, value, "expected an http:// or https:// URL with a host and no query")
    return value.rstrip("/")


def _int(env: Mapping[str, str], var: str, default: int, minimum: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) < minimum:
        raise _error(var, raw, f"expected a whole number >= {minimum}")
    return int(raw)


def _cpu(var: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 < value <= 1024):
        raise _error(var, raw, "expected a number of CPUs > 0, e.g. 2 or 0.5")
    return value


def _size(var: str, raw: str) -> str:
    match = SIZE.fullmatch(raw)
    if not match or int(match.group(1)) * SIZE_FACTORS[match.group(2).lower()] < 4 * 1024**2:
        raise _error(var, raw, "expected a size of at least 4m with an optional b/k/m/g suffix, e.g. 8G or 512m")
    return raw


def _optional_size(env: Mapping[str, str], var: str, default: int) -> int:
    """A size in bytes (see _size), 0 for "0" or "off"; the default when unset."""
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if raw.lower() in ("0", "off"):
        return 0
    return size_in_bytes(_size(var, raw))


def size_in_bytes(size: str) -> int:
    match = SIZE.fullmatch(size)
    assert match, size
    return int(match.group(1)) * SIZE_FACTORS[match.group(2).lower()]


def _gid(env: Mapping[str, str], var: str) -> int | None:
    """A group id, None when unset."""
    return _int(env, var, -1, 1) if env.get(var, "").strip() else None


def _list(env: Mapping[str, str], var: str) -> frozenset[str]:
    items = [item.strip() for item in env.get(var, "").split(",")]
    for item in items:
        if any(ch.isspace() for ch in item):
            raise _error(var, env[var], "expected a comma-separated list of names without spaces")
    return frozenset(item for item in items if item)


def _choice(env: Mapping[str, str], var: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(var, "").strip() or default
    if value not in allowed:
        raise _error(var, value, "expected one of " + "|".join(allowed))
    return value


def _docker_prefix(env: Mapping[str, str], var: str, default: str) -> str:
    value = env.get(var, "").strip() or default
    if not DOCKER_NAME.fullmatch(value) or len(value) > 30:
        raise _error(var, value, "expected at most 30 characters of [a-zA-Z0-9_.-], starting with a letter or digit")
    return value


def _gpu_mode(var: str, raw: str) -> str:
    value = raw.strip().lower() or "none"
    if value in ("none", "all") or (value.isdigit() and int(value) > 0):
        return str(int(value)) if value.isdigit() else value
    raise _error(var, raw, "expected none, all, or a whole number > 0 (GPUs per server, from GPU_DEVICES)")


def _gpu_devices(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("GPU_DEVICES", "")
    devices = [d.strip() for d in raw.split(",") if d.strip()]
    for device in devices:
        if not DEVICE_ID.fullmatch(device):
            raise _error("GPU_DEVICES", raw, "expected comma-separated device indexes or UUIDs, e.g. 0,1,2,3")
    if len(set(devices)) != len(devices):
        raise _error("GPU_DEVICES", raw, "a device is listed twice")
    return tuple(devices)


def _load_profiles(path: str, devices: tuple[str, ...]) -> tuple[Profile, ...]:
    var = "PROFILES"
    file = Path(path)
    if not file.is_absolute():
        raise _error(var, path, "expected the absolute path of a JSON or YAML file")
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise _error(var, path, f"cannot read the file ({exc.strerror})") from None
    try:
        if file.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is reported the same way
        raise _error(var, path, f"not valid JSON/YAML ({exc})") from None
    if isinstance(data, dict) and "profiles" in data:
        data = data["profiles"]
    if not isinstance(data, list) or not data:
        raise _error(var, path, "expected a non-empty list of profiles (name, display_name, cpu, mem, gpus)")
    profiles: list[Profile] = []
    for i, item in enumerate(data):
        where = f"{path}: profile #{i + 1}"
        if not isinstance(item, dict):
            raise _error(var, where, "each profile must be a mapping")
        unknown = set(item) - {"name", "display_name", "cpu", "mem", "gpus"}
        if unknown:
            raise _error(var, where, f"unknown keys {sorted(unknown)}; allowed: name, display_name, cpu, mem, gpus")
        name = str(item.get("name", ""))
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
            raise _error(var, f"{where} name={name!r}", "name must be 1-63 characters of [a-z0-9_-]")
        if any(p.name == name for p in profiles):
            raise _error(var, f"{where} name={name!r}", "profile names must be unique")
        raw_gpus = str(item.get("gpus", "none")).strip()
        gpus = _gpu_mode(f"PROFILES ({where}) gpus", "none" if raw_gpus == "0" else raw_gpus)
        if gpus.isdigit() and int(gpus) > len(devices):
            raise _error(var, f"{where} gpus={gpus}", f"needs GPU_DEVICES with at least {gpus} devices (has {len(devices)})")
        profiles.append(
            Profile(
                name=name,
                display_name=str(item.get("display_name") or name),
                cpu=_cpu(f"PROFILES ({where}) cpu", str(item.get("cpu", "2"))),
                mem=_size(f"PROFILES ({where}) mem", str(item.get("mem", "8G"))),
                gpus=gpus,
            )
        )
    return tuple(profiles)


def _datasets_source(env: Mapping[str, str]) -> str:
    value = env.get("DATASETS_SOURCE", "").strip() or "devhub-datasets"
    if value.startswith("/"):
        if ".." in value.split("/") or ":" in value or "," in value:
            raise _error("DATASETS_SOURCE", value, "an absolute host path must not contain '..', ':' or ','")
        return value.rstrip("/") or "/"
    if not DOCKER_NAME.fullmatch(value):
        raise _error("DATASETS_SOURCE", value, "expected a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*) or an absolute host path")
    return value


def _host(env: Mapping[str, str], var: str, default: str) -> str:
    value = env.get(var, "").strip() or default
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", value):
        raise _error(var, value, "expected a host name or IP address")
    return value


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting from `env` (default: the process environment)."""
    env = os.environ if env is None else env

    public_url = _url(env, "PUBLIC_URL", "https://devhub.localhost")
    server_routing = _server_routing(env, urlsplit(public_url).hostname or "")
    provider = _choice(env, "AUTH_PROVIDER", "demo", PROVIDERS)
    client_id = env.get("OAUTH_CLIENT_ID", "").strip()
    client_secret = env.get("OAUTH_CLIENT_SECRET", "").strip()
    if provider != "demo":
        for var, value in (("OAUTH_CLIENT_ID", client_id), ("OAUTH_CLIENT_SECRET", client_secret)):
            if not value:
                raise SettingsError(f"{var} is required with AUTH_PROVIDER={provider}: register an OAuth app and set it")
    required = provider == "oidc"
    why = " with AUTH_PROVIDER=oidc"
    oidc = {
        var: _url(env, var, required=required, why=why)
        for var in ("OIDC_AUTHORIZE_URL", "OIDC_TOKEN_URL", "OIDC_USERDATA_URL")
    }
    claim_pattern = r"[A-Za-z0-9_.:/-]+"
    claims = {}
    for var, default in (("OIDC_USERNAME_CLAIM", "preferred_username"), ("OIDC_GROUPS_CLAIM", "groups")):
        value = env.get(var, "").strip() or default
        if not re.fullmatch(claim_pattern, value):
            raise _error(var, value, "expected a claim name of [A-Za-z0-9_.:/-]")
        claims[var] = value

    lists = {var: _list(env, var) for var in ("ALLOWED_USERS", "ADMIN_USERS", "ALLOWED_ORGS", "ALLOWED_GROUPS", "ADMIN_GROUPS")}
    # Each list means something for some providers only; a list the provider would ignore is an error,
    # never a silent "everybody" or "nobody".
    meaningful = {
        "github": {"ALLOWED_USERS", "ADMIN_USERS", "ALLOWED_ORGS"},
        "gitlab": {"ALLOWED_USERS", "ADMIN_USERS", "ALLOWED_ORGS"},
        "oidc": {"ALLOWED_USERS", "ADMIN_USERS", "ALLOWED_GROUPS", "ADMIN_GROUPS"},
        "demo": set(),
    }[provider]
    for var, value in lists.items():
        if value and var not in meaningful:
            allowed = ", ".join(sorted(meaningful)) or "none of the ALLOWED_*/ADMIN_* lists (the demo has its own users)"
            raise _error(var, env[var], f"not used with AUTH_PROVIDER={provider}; it takes {allowed}")

    gpu_mode = _gpu_mode("GPU_MODE", env.get("GPU_MODE", ""))
    devices = _gpu_devices(env)
    if gpu_mode.isdigit() and int(gpu_mode) > len(devices):
        raise _error(
            "GPU_DEVICES", env.get("GPU_DEVICES", ""),
            f"GPU_MODE={gpu_mode} hands out {gpu_mode} device(s) per server from GPU_DEVICES, which lists {len(devices)}",
        )
    profiles_path = env.get("PROFILES", "").strip()
    profiles = _load_profiles(profiles_path, devices) if profiles_path else ()

    parts = urlsplit(public_url)
    return Settings(
        public_url=public_url,
        server_routing=server_routing,
        auth_provider=provider,
        oauth_client_id=client_id,
        oauth_client_secret=client_secret,
        gitlab_url=_url(env, "GITLAB_URL", "https://gitlab.com"),
        oidc_authorize_url=oidc["OIDC_AUTHORIZE_URL"],
        oidc_token_url=oidc["OIDC_TOKEN_URL"],
        oidc_userdata_url=oidc["OIDC_USERDATA_URL"],
        oidc_username_claim=claims["OIDC_USERNAME_CLAIM"],
        oidc_groups_claim=claims["OIDC_GROUPS_CLAIM"],
        allowed_users=lists["ALLOWED_USERS"],
        admin_users=lists["ADMIN_USERS"],
        allowed_orgs=lists["ALLOWED_ORGS"],
        allowed_groups=lists["ALLOWED_GROUPS"],
        admin_groups=lists["ADMIN_GROUPS"],
        demo_oidc_url=_url(env, "DEMO_OIDC_URL", "http://oidc:8080"),
        # Browsers reach the demo IdP through the public entry point (nginx strips /demo-idp).
        demo_oidc_public_url=_url(env, "DEMO_OIDC_PUBLIC_URL", f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/demo-idp"),
        user_image=_image(env),
        user_mem_limit=_size("USER_MEM_LIMIT", env.get("USER_MEM_LIMIT", "").strip() or "8G"),
        user_cpu_limit=_cpu("USER_CPU_LIMIT", env.get("USER_CPU_LIMIT", "").strip() or "2"),
        user_pids_limit=_int(env, "USER_PIDS_LIMIT", 1024, 64),
        user_shm_size=_size("USER_SHM_SIZE", env.get("USER_SHM_SIZE", "").strip() or "1G"),
        user_tmp_size=_size("USER_TMP_SIZE", env.get("USER_TMP_SIZE", "").strip() or "2G"),
        gpu_mode=gpu_mode,
        gpu_devices=devices,
        profiles=profiles,
        datasets_source=_datasets_source(env),
        user_volume_prefix=_docker_prefix(env, "USER_VOLUME_PREFIX", "devhub-home-"),
        on_user_delete=_choice(env, "ON_USER_DELETE", "remove", ON_USER_DELETE),
        idle_cull_timeout=_int(env, "IDLE_CULL_TIMEOUT", 3600, 0),
        idle_cull_timeout_gpu=_int(env, "IDLE_CULL_TIMEOUT_GPU", 0, 0),
        spawn_timeout=_int(env, "SPAWN_TIMEOUT", 120, 10),
        user_network_prefix=_docker_prefix(env, "USER_NETWORK_PREFIX", "devhub-user-"),
        hub_connect_host=_host(env, "HUB_CONNECT_HOST", "hub"),
        hub_bind_host=_host(env, "HUB_BIND_HOST", "") if env.get("HUB_BIND_HOST", "").strip() else "",
        users_hub_api_url=_url(env, "USERS_HUB_API_URL"),
        proxy_api_url=_url(env, "PROXY_API_URL", "http://proxy:8001"),
        proxy_auth_token_file=_abs_path(env, "PROXY_AUTH_TOKEN_FILE", "/srv/proxy-secret/auth_token"),
        ssh_port=_port(env, "SSH_PORT", 2222),
        data_dir=_abs_path(env, "DATA_DIR", "/srv/jupyterhub"),
        ssh_gateway=_flag(env, "SSH_GATEWAY", True),
        ssh_gateway_token_file=_abs_path(env, "SSH_GATEWAY_TOKEN_FILE", "/srv/sshgw-secret/api_token"),
        ssh_gateway_token_gid=_gid(env, "SSH_GATEWAY_TOKEN_GID"),
        metrics_token_file=_abs_path(env, "METRICS_TOKEN_FILE", "/srv/metrics-secret/api_token"),
        metrics_token_gid=_gid(env, "METRICS_TOKEN_GID"),
        metrics_user_labels=_flag(env, "METRICS_USER_LABELS", True),
        ssh_gateway_client_key_file=_abs_path(env, "SSH_GATEWAY_CLIENT_KEY_FILE", "/srv/sshgw-state/gateway_client_key.pub"),
        ssh_max_keys_per_user=_max_keys(env),
        egress=_egress(env, parts.hostname or ""),
        egress_key_file=_abs_path(env, "EGRESS_KEY_FILE", "/srv/egress-secret/egress_key"),
        user_extra_ca=_extra_ca(env),
        user_home_soft_limit=_optional_size(env, "USER_HOME_SOFT_LIMIT", 0),
        disk_usage_interval=_int(env, "DISK_USAGE_INTERVAL", 300, 5),
        hub_disk_reserve=_optional_size(env, "HUB_DISK_RESERVE", 256 * 1024**2),
        recent_login_seconds=_int(env, "RECENT_LOGIN_SECONDS", 600, 1),
    )


def _server_routing(env: Mapping[str, str], public_host: str) -> str:
    routing = _choice(env, "SERVER_ROUTING", "subdomain", SERVER_ROUTING)
    if routing == "subdomain" and (not re.search(r"[A-Za-z]", public_host) or ":" in public_host):
        raise SettingsError(
            f"SERVER_ROUTING=subdomain needs PUBLIC_URL with a DNS name (users' servers are at "
            f"https://<user>.<name>/), not the address {public_host!r}: use a name with wildcard DNS and "
            "a wildcard certificate, or opt in to the unsafe SERVER_ROUTING=path")
    return routing


def _egress(env: Mapping[str, str], public_host: str) -> egress.Policy:
    try:
        return egress.load(env, public_host)
    except egress.EgressError as exc:
        raise SettingsError(str(exc)) from None


MAX_EXTRA_CA_BYTES = 100_000  # passed in the environment, whose single values are capped at 128 KiB


def _extra_ca(env: Mapping[str, str]) -> str:
    """USER_EXTRA_CA_FILE: PEM certificates (e.g. a TLS-inspecting company proxy's CA) that user
    servers trust at run time. Compose mounts the host file USER_EXTRA_CA there (or /dev/null)."""
    var = "USER_EXTRA_CA_FILE"
    path = env.get(var, "").strip()
    if not path:
        return ""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise _error(var, path, f"cannot read the file ({exc.strerror})") from None
    text = text.strip()
    if not text:
        return ""
    if len(text) > MAX_EXTRA_CA_BYTES:
        raise _error(var, path, f"{len(text)} bytes; at most {MAX_EXTRA_CA_BYTES} (give the extra CA alone, not a whole bundle)")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise _error(var, path, "expected PEM CA certificates (no PEM certificate)")
    try:
        ssl.create_default_context(cadata=text)
    except ssl.SSLError as exc:
        raise _error(var, path, f"expected PEM CA certificates ({exc.args[-1]})") from None
    return text + "\n"


def _flag(env: Mapping[str, str], var: str, default: bool) -> bool:
    raw = env.get(var, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise _error(var, raw, "expected 1 or 0 (true/false, yes/no, on/off)")


def _max_keys(env: Mapping[str, str]) -> int:
    value = _int(env, "SSH_MAX_KEYS_PER_USER", 10, 1)
    if value > 1000:
        raise _error("SSH_MAX_KEYS_PER_USER", str(value), "expected a whole number from 1 to 1000")
    return value


def _image(env: Mapping[str, str]) -> str:
    value = env.get("USER_IMAGE", "").strip() or "devhub/dev-gpu:latest"
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/:@-]*", value) or len(value) > 255:
        raise _error("USER_IMAGE", value, "expected a Docker image reference such as devhub/dev-gpu:latest")
    return value


def _abs_path(env: Mapping[str, str], var: str, default: str) -> str:
    value = env.get(var, "").strip() or default
    if not value.startswith("/") or ".." in value.split("/"):
        raise _error(var, value, "expected an absolute path without '..'")
    return value


def _port(env: Mapping[str, str], var: str, default: int) -> int:
    value = _int(env, var, default, 1)
    if value > 65535:
        raise _error(var, str(value), "expected a TCP port 1-65535")
    return value
