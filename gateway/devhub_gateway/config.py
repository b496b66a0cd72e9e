"""Gateway settings from the environment, validated with messages that say what to fix."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping


class ConfigError(ValueError):
    pass


@dataclass
class Settings:
    port: int = 2222
    listen: str = ""  # all addresses
    state_dir: Path = Path("/var/lib/devhub-sshgw")
    router: str = "hub"
    static_config: Path | None = None
    hub_api_url: str = ""
    hub_api_token: str = field(default="", repr=False)
    max_sessions_per_user: int = 10
    activity_interval: float = 300
    allow_remote_forward: bool = False
    auth_failures: int = 10          # failures per address allowed within auth_window...
    auth_window: float = 60          # ...seconds before the address is blocked
    auth_block: float = 120          # seconds a blocked address is refused
    user_auth_failures: int = 30     # failures per user within auth_window before slowing down
    fail_delay: float = 0.5          # every refused key answers after this long
    start_timeout: float = 300       # waiting for a user's server to start
    login_timeout: float = 15        # TCP accept to authenticated: handshake + authentication
    # Abuse limits (README "Limits"): what a flood or one user can hold at once.
    max_preauth: int = 256                 # unauthenticated connections, all addresses
    max_preauth_per_address: int = 20      # unauthenticated connections from one address (a NAT, a script)
    max_channels_per_connection: int = 32  # open sessions + forwarded channels on one connection
    max_channels_per_user: int = 64        # the same over all of one user's connections
    max_channels: int = 1024               # the same over all users
    channel_window: int = 1024 * 1024      # SSH window per channel (bytes buffered per direction)
    hub_max_requests: int = 64             # concurrent short hub API calls (progress streams aside)
    refusal_log_interval: float = 60       # repeats of a refusal per address: one summary line per interval
    access_check_interval: float = 30      # live connections: is the user (and their key) still allowed?
    hub_public_url: str = ""               # where users log in again (told when the hub needs a fresh login)
    metrics_listen: tuple[str, int] | None = None  # GET /metrics there (host, port); None: not served
    metrics_user_labels: bool = True       # devhub_gateway_user_connections{user} (off: one series less per user)


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value}: must be between {lo} and {hi}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value}: must be between {lo} and {hi}")
    return value


_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2}


def _size(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """Bytes, optionally with a K or M suffix (binary: 512K = 524288)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    number, unit = raw.upper().rstrip("IB"), ""
    if number and number[-1] in "KM":
        number, unit = number[:-1], number[-1]
    try:
        value = int(number) * _UNITS[unit]
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a size (bytes, or with K or M: 512K, 1M)") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw}: must be between {lo // 1024}K and {hi // 1024 ** 2}M")
    return value


def _not_above(smaller: tuple[str, int], larger: tuple[str, int]) -> None:
    if smaller[1] > larger[1]:
        raise ConfigError(f"{smaller[0]}={smaller[1]} is larger than {larger[0]}={larger[1]}; "
                          f"the first is a share of the second")


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={raw!r}: use 1 or 0")


def _listen(env: Mapping[str, str], name: str) -> tuple[str, int] | None:
    """host:port (a host name, an IPv4 address or [IPv6]); the host is required: binding to every
    address must be asked for (0.0.0.0), never the result of a missing name."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"{name}={raw!r}: expected host:port (e.g. sshgw-metrics:9101), "
                          f"the address to serve /metrics on")
    return host, int(port)


def _public_url(env: Mapping[str, str]) -> str:
    """PUBLIC_URL, the hub's address for people (compose passes the hub's own)."""
    raw = env.get("PUBLIC_URL", "").strip().rstrip("/")
    if raw and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"PUBLIC_URL={raw!r}: expected an http(s):// URL")
    return raw


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    router = env.get("GATEWAY_ROUTER", "hub").strip().lower() or "hub"
    if router not in ("hub", "static"):
        raise ConfigError(f"GATEWAY_ROUTER={router!r}: use 'hub' (JupyterHub API) or 'static' (GATEWAY_STATIC_CONFIG)")
    s = Settings(
        port=_int(env, "GATEWAY_PORT", 2222, 1, 65535),
        listen=env.get("GATEWAY_LISTEN", "").strip(),
        state_dir=Path(env.get("GATEWAY_STATE_DIR", "").strip() or "/var/lib/devhub-sshgw"),
        router=router,
        max_sessions_per_user=_int(env, "GATEWAY_MAX_SESSIONS_PER_USER", 10, 1, 10000),
        activity_interval=_float(env, "GATEWAY_ACTIVITY_INTERVAL", 300, 1, 86400),
        allow_remote_forward=_bool(env, "GATEWAY_ALLOW_REMOTE_FORWARD"),
        auth_failures=_int(env, "GATEWAY_AUTH_FAILURES", 10, 1, 100000),
        auth_window=_float(env, "GATEWAY_AUTH_WINDOW", 60, 1, 86400),
        auth_block=_float(env, "GATEWAY_AUTH_BLOCK", 120, 0, 86400),
        user_auth_failures=_int(env, "GATEWAY_USER_AUTH_FAILURES", 30, 1, 100000),
        fail_delay=_float(env, "GATEWAY_FAIL_DELAY", 0.5, 0, 10),
        start_timeout=_float(env, "GATEWAY_START_TIMEOUT", 300, 5, 3600),
        login_timeout=_float(env, "GATEWAY_LOGIN_TIMEOUT", 15, 1, 600),
        max_preauth=_int(env, "GATEWAY_MAX_PREAUTH", 256, 1, 100000),
        max_preauth_per_address=_int(env, "GATEWAY_MAX_PREAUTH_PER_ADDRESS", 20, 1, 100000),
        max_channels_per_connection=_int(env, "GATEWAY_MAX_CHANNELS_PER_CONNECTION", 32, 1, 100000),
        max_channels_per_user=_int(env, "GATEWAY_MAX_CHANNELS_PER_USER", 64, 1, 100000),
        max_channels=_int(env, "GATEWAY_MAX_CHANNELS", 1024, 1, 1000000),
        channel_window=_size(env, "GATEWAY_CHANNEL_WINDOW", 1024 * 1024, 64 * 1024, 16 * 1024 * 1024),
        hub_max_requests=_int(env, "GATEWAY_HUB_MAX_REQUESTS", 64, 1, 10000),
        refusal_log_interval=_float(env, "GATEWAY_REFUSAL_LOG_INTERVAL", 60, 1, 3600),
        access_check_interval=_float(env, "GATEWAY_ACCESS_CHECK_INTERVAL", 30, 1, 3600),
        hub_public_url=_public_url(env),
        metrics_listen=_listen(env, "GATEWAY_METRICS_LISTEN"),
        metrics_user_labels=_bool(env, "GATEWAY_METRICS_USER_LABELS", default=True),
    )
    _not_above(("GATEWAY_MAX_PREAUTH_PER_ADDRESS", s.max_preauth_per_address), ("GATEWAY_MAX_PREAUTH", s.max_preauth))
    _not_above(("GATEWAY_MAX_CHANNELS_PER_CONNECTION", s.max_channels_per_connection),
               ("GATEWAY_MAX_CHANNELS_PER_USER", s.max_channels_per_user))
    _not_above(("GATEWAY_MAX_CHANNELS_PER_USER", s.max_channels_per_user), ("GATEWAY_MAX_CHANNELS", s.max_channels))
    if router == "static":
        path = env.get("GATEWAY_STATIC_CONFIG", "").strip()
        if not path:
            raise ConfigError("GATEWAY_ROUTER=static needs GATEWAY_STATIC_CONFIG (path of a JSON or YAML file)")
        if not Path(path).is_file():
            raise ConfigError(f"GATEWAY_STATIC_CONFIG={path}: no such file")
        s.static_config = Path(path)
    else:
        s.hub_api_url = env.get("JUPYTERHUB_API_URL", "").strip()
        s.hub_api_token = env.get("JUPYTERHUB_API_TOKEN", "").strip()
        token_file = env.get("JUPYTERHUB_API_TOKEN_FILE", "").strip()
        if not s.hub_api_token and token_file:
            # The hub writes the service token (mode 600) into a volume shared with the gateway only.
            try:
                s.hub_api_token = Path(token_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"JUPYTERHUB_API_TOKEN_FILE={token_file}: {exc.strerror}") from None
        if not s.hub_api_url.startswith(("http://", "https://")):
            raise ConfigError("GATEWAY_ROUTER=hub needs JUPYTERHUB_API_URL (e.g. http://hub:8081/hub/api)")
        if not s.hub_api_token:
            raise ConfigError("GATEWAY_ROUTER=hub needs JUPYTERHUB_API_TOKEN or JUPYTERHUB_API_TOKEN_FILE (the gateway service's token)")
    return s
