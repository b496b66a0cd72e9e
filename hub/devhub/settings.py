"""The hub's settings: environment variables, declared once each in TABLE (devhub_env: name, field,
parser with its bounds, default, help), validated once at start into a frozen Settings object.

Every problem raises SettingsError with a message that names the variable, the bad value and what
is allowed; jupyterhub_config.py prints it and the hub refuses to start. Rules that involve several
variables are in `_together`. `.env.example` documents every variable an operator sets
(tests/unit/test_hub_settings.py checks it against TABLE).
"""

from __future__ import annotations

import json
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

import devhub_env
from devhub_env import Invalid, Var, absolute_path, choice, flag, matching, names, text, url, whole

from . import demo_idp, egress, subnets

SettingsError = devhub_env.SettingError  # the name the hub's code and tests know it by

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
MAX_EXTRA_CA_BYTES = 100_000  # passed in the environment, whose single values are capped at 128 KiB


@dataclass(frozen=True)
class Profile:
    """A resource profile offered on the spawn page (PROFILES)."""

    name: str
    display_name: str
    cpu: float
    mem: str
    gpus: str  # "none", "all" or a positive integer as a string: same meaning as GPU_MODE
    idle_timeout: int = 0  # seconds; this profile's servers are culled after it instead of IDLE_CULL_TIMEOUT (0: that)


def _checked(var: str, raw: str, parse):
    """`parse(raw)` for a value found inside another setting (a profile's mem): errors name `var`."""
    try:
        return parse(raw)
    except Invalid as exc:
        raise devhub_env.invalid(var, raw, str(exc)) from None


def _cpu(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 < value <= 1024):
        raise Invalid("expected a number of CPUs > 0, e.g. 2 or 0.5")
    return value


def _size(raw: str) -> str:
    match = SIZE.fullmatch(raw)
    if not match or int(match.group(1)) * SIZE_FACTORS[match.group(2).lower()] < 4 * 1024**2:
        raise Invalid("expected a size of at least 4m with an optional b/k/m/g suffix, e.g. 8G or 512m")
    return raw


def _optional_size(raw: str) -> int:
    """A size in bytes (see _size), 0 for "0" or "off"."""
    return 0 if raw.lower() in ("0", "off") else size_in_bytes(_size(raw))


def size_in_bytes(size: str) -> int:
    match = SIZE.fullmatch(size)
    assert match, size
    return int(match.group(1)) * SIZE_FACTORS[match.group(2).lower()]


def _port(raw: str) -> int:
    value = whole(1)(raw)
    if value > 65535:
        raise Invalid("expected a TCP port 1-65535")
    return value


def _gpu_mode(raw: str) -> str:
    value = raw.strip().lower() or "none"
    if value in ("none", "all") or (value.isdigit() and int(value) > 0):
        return str(int(value)) if value.isdigit() else value
    raise Invalid("expected none, all, or a whole number > 0 (GPUs per server, from GPU_DEVICES)")


def _gpu_devices(raw: str) -> tuple[str, ...]:
    devices = [d.strip() for d in raw.split(",") if d.strip()]
    if not all(DEVICE_ID.fullmatch(device) for device in devices):
        raise Invalid("expected comma-separated device indexes or UUIDs, e.g. 0,1,2,3")
    if len(set(devices)) != len(devices):
        raise Invalid("a device is listed twice")
    return tuple(devices)


def _profiles(path: str) -> tuple[Profile, ...]:
    """PROFILES: the profiles in a JSON or YAML file (their GPUs are checked against GPU_DEVICES in _together)."""
    file = Path(path)
    if not file.is_absolute():
        raise Invalid("expected the absolute path of a JSON or YAML file")
    try:
        content = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise Invalid(f"cannot read the file ({exc.strerror})") from None
    try:
        if file.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(content)
        else:
            data = json.loads(content)
    except Exception as exc:  # noqa: BLE001 - any parse error is reported the same way
        raise Invalid(f"not valid JSON/YAML ({exc})") from None
    if isinstance(data, dict) and "profiles" in data:
        data = data["profiles"]
    if not isinstance(data, list) or not data:
        raise Invalid("expected a non-empty list of profiles (name, display_name, cpu, mem, gpus)")
    return tuple(_profile(f"{path}: profile #{i + 1}", item, data[:i]) for i, item in enumerate(data))


def _profile(where: str, item, earlier: list) -> Profile:
    var = "PROFILES"
    if not isinstance(item, dict):
        raise devhub_env.invalid(var, where, "each profile must be a mapping")
    keys = ("name", "display_name", "cpu", "mem", "gpus", "idle_timeout")
    unknown = set(item) - set(keys)
    if unknown:
        raise devhub_env.invalid(var, where, f"unknown keys {sorted(unknown)}; allowed: {', '.join(keys)}")
    name = str(item.get("name", ""))
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
        raise devhub_env.invalid(var, f"{where} name={name!r}", "name must be 1-63 characters of [a-z0-9_-]")
    if any(isinstance(other, dict) and str(other.get("name", "")) == name for other in earlier):
        raise devhub_env.invalid(var, f"{where} name={name!r}", "profile names must be unique")
    raw_gpus = str(item.get("gpus", "none")).strip()
    idle = str(item.get("idle_timeout", 0)).strip()
    if not idle.isdigit():
        raise devhub_env.invalid(var, f"{where} idle_timeout={idle}", "expected whole seconds >= 0 (0: IDLE_CULL_TIMEOUT applies)")
    return Profile(
        name=name,
        display_name=str(item.get("display_name") or name),
        cpu=_checked(f"PROFILES ({where}) cpu", str(item.get("cpu", "2")), _cpu),
        mem=_checked(f"PROFILES ({where}) mem", str(item.get("mem", "8G")), _size),
        gpus=_checked(f"PROFILES ({where}) gpus", "none" if raw_gpus == "0" else raw_gpus, _gpu_mode),
        idle_timeout=int(idle),
    )


def _demo_extra_users(raw: str) -> str:
    try:
        demo_idp.demo_users(raw)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None  # demo_idp's message names the variable and the entry
    return raw


def _network_pool(raw: str) -> str:
    try:
        return str(subnets.parse_pool(raw))
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _datasets_source(raw: str) -> str:
    if raw.startswith("/"):
        if ".." in raw.split("/") or ":" in raw or "," in raw:
            raise Invalid("an absolute host path must not contain '..', ':' or ','")
        return raw.rstrip("/") or "/"
    if not DOCKER_NAME.fullmatch(raw):
        raise Invalid("expected a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*) or an absolute host path")
    return raw


def _extra_ca(path: str) -> str:
    """USER_EXTRA_CA_FILE: PEM certificates (e.g. a TLS-inspecting company proxy's CA) that user
    servers trust at run time. Compose mounts the host file USER_EXTRA_CA there (or /dev/null)."""
    try:
        content = Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError as exc:
        raise Invalid(f"cannot read the file ({exc.strerror})") from None
    if not content:
        return ""
    if len(content) > MAX_EXTRA_CA_BYTES:
        raise Invalid(f"{len(content)} bytes; at most {MAX_EXTRA_CA_BYTES} (give the extra CA alone, not a whole bundle)")
    if "-----BEGIN CERTIFICATE-----" not in content:
        raise Invalid("expected PEM CA certificates (no PEM certificate)")
    try:
        ssl.create_default_context(cadata=content)
    except ssl.SSLError as exc:
        raise Invalid(f"expected PEM CA certificates ({exc.args[-1]})") from None
    return content + "\n"


_docker_prefix = matching(DOCKER_NAME.pattern, "expected at most 30 characters of [a-zA-Z0-9_.-], starting with a letter or digit", 30)
_host = matching(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", "expected a host name or IP address")
_claim = matching(r"[A-Za-z0-9_.:/-]+", "expected a claim name of [A-Za-z0-9_.:/-]")
_image = matching(r"[a-z0-9][a-z0-9._/:@-]*", "expected a Docker image reference such as devhub/dev-gpu:latest", 255)


# Every variable the hub reads, but egress's five (EGRESS, EGRESS_ALLOW, ...): egress.py also runs alone in
# the egress image, so it parses them itself (egress.VARIABLES, egress.load, from _together).
TABLE: tuple[Var, ...] = (
    # -- where the hub is --
    Var("PUBLIC_URL", "public_url", url, "https://devhub.localhost", "The URL users open (compose: https://SERVER_NAME[:HTTPS_PORT])."),
    Var("SERVER_ROUTING", "server_routing", choice(*SERVER_ROUTING), "subdomain",
        "subdomain: each user's server on its own origin; path: all on the hub's origin (unsafe, opt-in)."),
    Var("RECENT_LOGIN_SECONDS", "recent_login_seconds", whole(1), 600,
        "SERVER_ROUTING=path: SSH key changes and new tokens need a browser login this recent.", int),
    # -- login --
    Var("AUTH_PROVIDER", "auth_provider", choice(*PROVIDERS), "demo", "demo | github | gitlab | oidc."),
    Var("OAUTH_CLIENT_ID", "oauth_client_id", text, "", "The provider's OAuth application (required unless demo)."),
    Var("OAUTH_CLIENT_SECRET", "oauth_client_secret", text, "", "Its secret (required unless demo).", secret=True),
    Var("GITLAB_URL", "gitlab_url", url, "https://gitlab.com", "The GitLab instance."),
    Var("OIDC_AUTHORIZE_URL", "oidc_authorize_url", url, "", "Generic OIDC: authorize endpoint (required with oidc)."),
    Var("OIDC_TOKEN_URL", "oidc_token_url", url, "", "Generic OIDC: token endpoint (required with oidc)."),
    Var("OIDC_USERDATA_URL", "oidc_userdata_url", url, "", "Generic OIDC: userinfo endpoint (required with oidc)."),
    Var("OIDC_USERNAME_CLAIM", "oidc_username_claim", _claim, "preferred_username", "The claim that names the user."),
    Var("OIDC_GROUPS_CLAIM", "oidc_groups_claim", _claim, "groups", "The claim that lists the user's groups."),
    Var("ALLOWED_USERS", "allowed_users", names, frozenset(), "Who may log in (github, gitlab, oidc).", frozenset),
    Var("ADMIN_USERS", "admin_users", names, frozenset(), "Admins (github, gitlab, oidc).", frozenset),
    Var("ALLOWED_ORGS", "allowed_orgs", names, frozenset(), "GitHub organisations or GitLab groups allowed in.", frozenset),
    Var("ALLOWED_GROUPS", "allowed_groups", names, frozenset(), "OIDC groups allowed in.", frozenset),
    Var("ADMIN_GROUPS", "admin_groups", names, frozenset(), "OIDC groups whose members are admins.", frozenset),
    Var("DEMO_OIDC_URL", "demo_oidc_url", url, "http://oidc:8080", "Where the hub reaches the demo identity provider.", internal=True),
    Var("DEMO_OIDC_PUBLIC_URL", "demo_oidc_public_url", url, "",
        "Where browsers reach it (default: PUBLIC_URL/demo-idp, through nginx).", internal=True),
    Var("DEMO_EXTRA_USERS", "demo_extra_users", _demo_extra_users, "", "More demo identities (load tests, odd names).", internal=True),
    # -- user servers --
    Var("USER_IMAGE", "user_image", _image, "devhub/dev-gpu:latest", "The image of users' servers."),
    Var("USER_MEM_LIMIT", "user_mem_limit", _size, "8G", "Memory per server (Docker size)."),
    Var("USER_CPU_LIMIT", "user_cpu_limit", _cpu, 2.0, "CPUs per server.", float),
    Var("USER_PIDS_LIMIT", "user_pids_limit", whole(64), 1024, "Processes per server.", int),
    Var("USER_SHM_SIZE", "user_shm_size", _size, "1G", "/dev/shm per server."),
    Var("USER_TMP_SIZE", "user_tmp_size", _size, "2G", "/tmp (memory) per server."),
    Var("GPU_MODE", "gpu_mode", _gpu_mode, "none", "none | all | N GPUs of GPU_DEVICES per server."),
    Var("GPU_DEVICES", "gpu_devices", _gpu_devices, (), "The GPUs handed out (indexes or UUIDs).", tuple),
    Var("PROFILES", "profiles", _profiles, (), "A JSON or YAML file of resource profiles offered at spawn.", tuple),
    Var("DATASETS_SOURCE", "datasets_source", _datasets_source, "devhub-datasets",
        "A volume or absolute host path, mounted read-only at /datasets."),
    Var("USER_VOLUME_PREFIX", "user_volume_prefix", _docker_prefix, "devhub-home-", "Home volumes are named <prefix><user>."),
    Var("USER_NETWORK_PREFIX", "user_network_prefix", _docker_prefix, "devhub-user-",
        "Each server's container and internal network are named <prefix><user>[-s-<server>]."),
    Var("USER_NETWORK_POOL", "user_network_pool", _network_pool, "10.213.0.0/16",
        "Private IPv4 network each server's internal network takes a /27 of (a /16: 2048 servers)."),
    Var("ON_USER_DELETE", "on_user_delete", choice(*ON_USER_DELETE), "remove", "A deleted user's home: remove | archive | keep."),
    Var("IDLE_CULL_TIMEOUT", "idle_cull_timeout", whole(0), 3600, "Stop servers idle this long (seconds; 0: never).", int),
    Var("IDLE_CULL_TIMEOUT_GPU", "idle_cull_timeout_gpu", whole(0), 0, "Servers holding GPUs: a shorter idle timeout (0: none).", int),
    Var("MAX_SERVERS_PER_USER", "max_servers_per_user", whole(1), 3, "The default server plus named servers (1: named servers off).", int),
    Var("SPAWN_TIMEOUT", "spawn_timeout", whole(10), 120, "Seconds a server may take to start.", int),
    Var("USER_EXTRA_CA_FILE", "user_extra_ca", _extra_ca, "", "PEM CAs users' servers trust (compose mounts USER_EXTRA_CA here).", secret=True, internal=True),
    Var("USER_HOME_SOFT_LIMIT", "user_home_soft_limit", _optional_size, 0, "A home above this is warned about (0: no limit).", int),
    Var("DISK_USAGE_INTERVAL", "disk_usage_interval", whole(5), 300, "Seconds between measurements of the homes.", int),
    Var("HUB_DISK_RESERVE", "hub_disk_reserve", _optional_size, 256 * 1024**2, "Disk kept free for the hub's database (0: none).", int),
    # -- SSH --
    Var("SSH_PORT", "ssh_port", _port, 2222, "The SSH gateway's public port (shown to users).", int),
    Var("SSH_GATEWAY", "ssh_gateway", flag, True, "Register the SSH gateway with the hub (0: a hub without one, e.g. in tests).", bool,
        internal=True),
    Var("SSH_MAX_KEYS_PER_USER", "ssh_max_keys_per_user", whole(1, 1000), 10, "SSH keys per user.", int),
    # -- monitoring --
    Var("METRICS_USER_LABELS", "metrics_user_labels", flag, True, "Per-user series in devhub's metrics (off: sums).", bool),
    # -- set by docker-compose.yml (the stack's own wiring, not for operators) --
    Var("HUB_CONNECT_HOST", "hub_connect_host", _host, "hub", "The name user servers and services reach the hub by.", internal=True),
    Var("HUB_BIND_HOST", "hub_bind_host", _host, "", "The one address the hub listens on (empty: all).", internal=True),
    Var("USERS_HUB_API_URL", "users_hub_api_url", url, "", "How user servers reach the hub's API (empty: the hub itself).", internal=True),
    Var("PROXY_API_URL", "proxy_api_url", url, "http://proxy:8001", "configurable-http-proxy's API.", internal=True),
    Var("PROXY_AUTH_TOKEN_FILE", "proxy_auth_token_file", absolute_path, "/srv/proxy-secret/auth_token", "Its token (generated).", internal=True),
    Var("PROXY_LISTEN_HOST", "proxy_listen_host", _host, "", "The name whose address the proxy serves on (nginx's network; empty: all).", internal=True),
    Var("PROXY_API_LISTEN_HOST", "proxy_api_listen_host", _host, "", "The name whose address its API listens on (the hub's network; empty: all).", internal=True),
    Var("DEMO_IDP_PORT", "demo_idp_port", _port, 8080, "The demo identity provider's port in its container.", int, internal=True),
    Var("DATA_DIR", "data_dir", absolute_path, "/srv/jupyterhub", "The hub's database and secrets.", internal=True),
    Var("SSH_GATEWAY_TOKEN_FILE", "ssh_gateway_token_file", absolute_path, "/srv/sshgw-secret/api_token", "The gateway's hub token (generated).", internal=True),
    Var("SSH_GATEWAY_TOKEN_GID", "ssh_gateway_token_gid", whole(1), None, "The group the gateway reads it by.", int | None, internal=True),
    Var("SSH_GATEWAY_CLIENT_KEY_FILE", "ssh_gateway_client_key_file", absolute_path,
        "/srv/sshgw-state/gateway_client_key.pub", "The gateway's client key, trusted by user containers.", internal=True),
    Var("EGRESS_KEY_FILE", "egress_key_file", absolute_path, "/srv/egress-secret/egress_key", "The egress proxy's key (generated).", internal=True),
    Var("METRICS_TOKEN_FILE", "metrics_token_file", absolute_path, "/srv/metrics-secret/api_token", "Prometheus' read:metrics token (generated).", internal=True),
    Var("METRICS_TOKEN_GID", "metrics_token_gid", whole(1), None, "The group Prometheus reads it by.", int | None, internal=True),
)
# Read by docker-compose.yml and the scripts, not by the hub; documented in .env.example too.
COMPOSE_VARS = ("HTTPS_PORT", "HTTP_PORT", "BIND_ADDRESS", "SSH_BIND_ADDRESS", "SERVER_NAME", "TLS_DIR",
                "USER_EXTRA_CA", "MONITORING", "PROMETHEUS_PORT", "PROMETHEUS_RETENTION",
                "PROMETHEUS_SCRAPE_INTERVAL", "GATEWAY_METRICS_USER_LABELS")


class _Derived:
    """What Settings says beyond its fields."""

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

    @property
    def demo_users(self) -> dict[str, bool]:
        """The demo identity provider's users (name -> admin), as it serves them (devhub.demo_idp)."""
        return demo_idp.demo_users(self.demo_extra_users)

    @property
    def named_servers(self) -> bool:
        return self.max_servers_per_user > 1

    @property
    def profile_idle_timeouts(self) -> bool:
        """Whether any profile sets its own idle timeout (devhub.culler then culls per server)."""
        return any(p.idle_timeout for p in self.profiles)


Settings = devhub_env.settings_class("Settings", TABLE, base=_Derived, extra=(("egress", egress.Policy),))


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    values = devhub_env.read(TABLE, env)
    _together(values, env)
    return Settings(**values)


def _together(values: dict, env: Mapping[str, str]) -> None:
    """The rules that involve several variables, and the values derived from others (in `values`)."""
    parts = urlsplit(values["public_url"])
    host = parts.hostname or ""
    if values["server_routing"] == "subdomain" and (not re.search(r"[A-Za-z]", host) or ":" in host):
        raise SettingsError(
            f"SERVER_ROUTING=subdomain needs PUBLIC_URL with a DNS name (users' servers are at "
            f"https://<user>.<name>/), not the address {host!r}: use a name with wildcard DNS and "
            "a wildcard certificate, or opt in to the unsafe SERVER_ROUTING=path")
    provider = values["auth_provider"]
    if provider != "demo":
        for var in ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET"):
            if not values[var.lower()]:
                raise SettingsError(f"{var} is required with AUTH_PROVIDER={provider}: register an OAuth app and set it")
    if provider == "oidc":
        for var in ("OIDC_AUTHORIZE_URL", "OIDC_TOKEN_URL", "OIDC_USERDATA_URL"):
            if not values[var.lower()]:
                raise SettingsError(f"{var} is required with AUTH_PROVIDER=oidc: set it to an http(s) URL")
    # Each list means something for some providers only; a list the provider would ignore is an error,
    # never a silent "everybody" or "nobody".
    meaningful = {
        "github": {"ALLOWED_USERS", "ADMIN_USERS", "ALLOWED_ORGS"},
        "gitlab": {"ALLOWED_USERS", "ADMIN_USERS", "ALLOWED_ORGS"},
        "oidc": {"ALLOWED_USERS", "ADMIN_USERS", "ALLOWED_GROUPS", "ADMIN_GROUPS"},
        "demo": set(),
    }[provider]
    for var in ("ALLOWED_USERS", "ADMIN_USERS", "ALLOWED_ORGS", "ALLOWED_GROUPS", "ADMIN_GROUPS"):
        if values[var.lower()] and var not in meaningful:
            allowed = ", ".join(sorted(meaningful)) or "none of the ALLOWED_*/ADMIN_* lists (the demo has its own users)"
            raise devhub_env.invalid(var, env[var].strip(), f"not used with AUTH_PROVIDER={provider}; it takes {allowed}")
    devices, mode = values["gpu_devices"], values["gpu_mode"]
    if mode.isdigit() and int(mode) > len(devices):
        raise devhub_env.invalid(
            "GPU_DEVICES", env.get("GPU_DEVICES", "").strip(),
            f"GPU_MODE={mode} hands out {mode} device(s) per server from GPU_DEVICES, which lists {len(devices)}")
    for i, profile in enumerate(values["profiles"]):
        if profile.gpus.isdigit() and int(profile.gpus) > len(devices):
            raise devhub_env.invalid("PROFILES", f"{env['PROFILES'].strip()}: profile #{i + 1} gpus={profile.gpus}",
                                     f"needs GPU_DEVICES with at least {profile.gpus} devices (has {len(devices)})")
    # Browsers reach the demo IdP through the public entry point (nginx strips /demo-idp).
    values["demo_oidc_public_url"] = (values["demo_oidc_public_url"]
                                      or f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/demo-idp")
    try:
        values["egress"] = egress.load(env, host)
    except egress.EgressError as exc:
        raise SettingsError(str(exc)) from None
