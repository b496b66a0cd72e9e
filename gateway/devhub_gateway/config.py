"""Gateway settings from the environment: each variable declared once in TABLE (devhub_env, shared
with the hub: the same parsers, the same messages naming the variable, the value and what is
allowed); the rules that involve several variables in `_together`. gateway/README.md's settings
table is generated from TABLE (`python -m devhub_gateway.config --markdown`; a test compares)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

import devhub_env
from devhub_env import Invalid, Var, choice, flag, number, text, url, whole

ConfigError = devhub_env.SettingError  # the name the gateway's code and tests know it by

_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2}


def _window(raw: str) -> int:
    """GATEWAY_CHANNEL_WINDOW: bytes, optionally with a K or M suffix (binary: 512K = 524288)."""
    number_part, unit = raw.upper().removesuffix("B").removesuffix("I"), ""
    if number_part and number_part[-1] in "KM":
        number_part, unit = number_part[:-1], number_part[-1]
    allowed = "expected a size from 64K to 16M (bytes, or with K or M: 512K, 1M)"
    if not number_part.isdigit():
        raise Invalid(allowed)
    value = int(number_part) * _UNITS[unit]
    if not 64 * 1024 <= value <= 16 * 1024 ** 2:
        raise Invalid(allowed)
    return value


def _listen(raw: str) -> tuple[str, int]:
    """host:port (a host name, an IPv4 address or [IPv6]); the host is required: binding to every
    address must be asked for (0.0.0.0), never the result of a missing name."""
    host, _, port = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise Invalid("expected host:port (e.g. sshgw-metrics:9101), the address to serve /metrics on")
    return host, int(port)


TABLE: tuple[Var, ...] = (
    Var("GATEWAY_PORT", "port", whole(1, 65535), 2222, "The port it listens on.", int),
    Var("GATEWAY_LISTEN", "listen", text, "", "The address it listens on (empty: all)."),
    Var("GATEWAY_STATE_DIR", "state_dir", Path, Path("/var/lib/devhub-sshgw"), "Its host key and client key.", Path),
    Var("GATEWAY_ROUTER", "router", choice("hub", "static", lower=True), "hub",
        "hub (JupyterHub's API) or static (GATEWAY_STATIC_CONFIG)."),
    Var("GATEWAY_STATIC_CONFIG", "static_config", Path, None, "The static router's JSON or YAML file.", Path | None),
    Var("JUPYTERHUB_API_URL", "hub_api_url", url, "", "The hub's API (with GATEWAY_ROUTER=hub)."),
    Var("JUPYTERHUB_API_TOKEN", "hub_api_token", text, "", "The gateway service's token...", secret=True),
    Var("JUPYTERHUB_API_TOKEN_FILE", "hub_token_file", text, "", "... or the file that holds it."),
    Var("PUBLIC_URL", "hub_public_url", url, "", "The hub's address for people (told when a login expired)."),
    Var("GATEWAY_MAX_SESSIONS_PER_USER", "max_sessions_per_user", whole(1, 10000), 10,
        "Logged-in connections per user.", int),
    Var("GATEWAY_ACTIVITY_INTERVAL", "activity_interval", number(1, 86400), 300.0,
        "Seconds between activity reports while data flows.", float),
    Var("GATEWAY_AUTH_FAILURES", "auth_failures", whole(1, 100000), 10,
        "Failed logins from one address within GATEWAY_AUTH_WINDOW that block it.", int),
    Var("GATEWAY_AUTH_WINDOW", "auth_window", number(1, 86400), 60.0, "Seconds.", float),
    Var("GATEWAY_AUTH_BLOCK", "auth_block", number(0, 86400), 120.0, "Seconds a blocked address is refused.", float),
    Var("GATEWAY_USER_AUTH_FAILURES", "user_auth_failures", whole(1, 100000), 30,
        "Failed logins for one user within the window before each answer slows down.", int),
    Var("GATEWAY_FAIL_DELAY", "fail_delay", number(0, 10), 0.5, "Seconds every refused key waits.", float),
    Var("GATEWAY_START_TIMEOUT", "start_timeout", number(5, 3600), 300.0,
        "Seconds to wait for a user's server to start.", float),
    Var("GATEWAY_LOGIN_TIMEOUT", "login_timeout", number(1, 600), 15.0,
        "From the TCP accept to authenticated: a client stalled in the handshake is cut off too.", float),
    Var("GATEWAY_MAX_PREAUTH", "max_preauth", whole(1, 100000), 256, "Unauthenticated connections, all addresses.", int),
    Var("GATEWAY_MAX_PREAUTH_PER_ADDRESS", "max_preauth_per_address", whole(1, 100000), 20,
        "Unauthenticated connections from one address; more are closed at accept, before the banner.", int),
    Var("GATEWAY_MAX_CHANNELS_PER_CONNECTION", "max_channels_per_connection", whole(1, 100000), 32,
        "Open sessions + forwarded channels on one connection.", int),
    Var("GATEWAY_MAX_CHANNELS_PER_USER", "max_channels_per_user", whole(1, 100000), 64,
        "The same over all of a user's connections.", int),
    Var("GATEWAY_MAX_CHANNELS", "max_channels", whole(1, 1000000), 1024, "The same over all users.", int),
    Var("GATEWAY_CHANNEL_WINDOW", "channel_window", _window, 1024 * 1024,
        "SSH window of every channel, both sides (bytes, or 512K, 2M; 64K to 16M).", int),
    Var("GATEWAY_HUB_MAX_REQUESTS", "hub_max_requests", whole(1, 10000), 64,
        "Concurrent short hub API calls (progress streams have their own client).", int),
    Var("GATEWAY_REFUSAL_LOG_INTERVAL", "refusal_log_interval", number(1, 3600), 60.0,
        "Refusals from one address: one audit line, then one summary per interval (seconds).", float),
    Var("GATEWAY_ACCESS_CHECK_INTERVAL", "access_check_interval", number(1, 3600), 30.0,
        "Seconds between checks that each live connection's user and key are still allowed.", float),
    Var("GATEWAY_METRICS_LISTEN", "metrics_listen", _listen, None,
        "host:port to serve GET /metrics on (empty: not served).", tuple[str, int] | None),
    Var("GATEWAY_METRICS_USER_LABELS", "metrics_user_labels", flag, True,
        "devhub_gateway_user_connections{user} (0: one series less per user).", bool),
    Var("GATEWAY_LOG_LEVEL", "log_level", choice("debug", "info", "warning", "error", lower=True), "info",
        "How much it logs to stderr (the audit lines on stdout are always written)."),
)

Settings = devhub_env.settings_class("Settings", TABLE)


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    values = devhub_env.read(TABLE, env)
    _together(values)
    return Settings(**values)


def _not_above(values: dict, smaller: str, larger: str) -> None:
    names = {var.field: var.name for var in TABLE}
    if values[smaller] > values[larger]:
        raise ConfigError(f"{names[smaller]}={values[smaller]} is larger than {names[larger]}={values[larger]}; "
                          f"the first is a share of the second")


def _together(values: dict) -> None:
    """The rules that involve several variables; the token read from its file (in `values`)."""
    _not_above(values, "max_preauth_per_address", "max_preauth")
    _not_above(values, "max_channels_per_connection", "max_channels_per_user")
    _not_above(values, "max_channels_per_user", "max_channels")
    if values["router"] == "static":
        path = values["static_config"]
        if path is None:
            raise ConfigError("GATEWAY_ROUTER=static needs GATEWAY_STATIC_CONFIG (path of a JSON or YAML file)")
        if not path.is_file():
            raise ConfigError(f"GATEWAY_STATIC_CONFIG={path}: no such file")
        return
    values["static_config"] = None
    token_file = values["hub_token_file"]
    if not values["hub_api_token"] and token_file:
        # The hub writes the service token (mode 600) into a volume shared with the gateway only.
        try:
            values["hub_api_token"] = Path(token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"JUPYTERHUB_API_TOKEN_FILE={token_file}: {exc.strerror}") from None
    if not values["hub_api_url"]:
        raise ConfigError("GATEWAY_ROUTER=hub needs JUPYTERHUB_API_URL (e.g. http://hub:8081/hub/api)")
    if not values["hub_api_token"]:
        raise ConfigError("GATEWAY_ROUTER=hub needs JUPYTERHUB_API_TOKEN or JUPYTERHUB_API_TOKEN_FILE (the gateway service's token)")


def only(*names: str, env: Mapping[str, str] | None = None) -> dict:
    """A few variables alone, by field name (the client key printer and the health check need no hub settings)."""
    return devhub_env.read_only(TABLE, names, os.environ if env is None else env)


def _shown(default) -> str:
    if default in (None, ""):
        return "(empty)"
    if isinstance(default, bool):
        return "`1`" if default else "`0`"
    if isinstance(default, float):
        return f"`{default:g}`"
    return f"`{default}`"


def markdown() -> str:
    """gateway/README.md's settings table."""
    rows = ["| variable | default | what |", "| --- | --- | --- |"]
    for var in TABLE:
        rows.append(f"| `{var.name}` | {_shown(var.default)} | {var.help} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__" and sys.argv[1:] == ["--markdown"]:
    sys.stdout.write(markdown())
