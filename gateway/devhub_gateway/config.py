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
    login_timeout: float = 30        # handshake + authentication


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


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={raw!r}: use 1 or 0")


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
        login_timeout=_float(env, "GATEWAY_LOGIN_TIMEOUT", 30, 1, 600),
    )
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
