"""Settings from environment variables, declared once each: a table of `Var` (the variable, the
field it fills, its parser with the bounds, its default, a line of help) that `read` walks.

The hub (devhub.settings) and the SSH gateway (devhub_gateway.config) both declare their settings
with it, so both report a bad value the same way, naming the variable, the value and what is
allowed: ``GATEWAY_PORT='99999' is invalid: expected a whole number from 1 to 65535``. Rules that
involve several variables stay with each table's owner, in one function there.

Its own package (copied into both images): the gateway does not depend on the hub's code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit


class SettingError(ValueError):
    """A setting is missing or invalid; the message is meant for the operator."""


class Invalid(ValueError):
    """Raised by a parser: what is allowed (read() adds the variable and the value)."""


def invalid(var: str, value: str, allowed: str) -> SettingError:
    """The one way a bad value is reported."""
    return SettingError(f"{var}={value!r} is invalid: {allowed}")


@dataclass(frozen=True)
class Var:
    name: str  # the environment variable
    field: str  # the settings object's attribute
    parse: Callable[[str], Any]  # the stripped, non-empty value -> the setting; raises Invalid
    default: Any  # when unset or empty
    help: str
    type: Any = str  # the field's type (for the settings class)
    secret: bool = False  # kept out of repr()
    internal: bool = False  # set by the stack's own wiring (docker-compose.yml, tests), not by operators


def read(table: tuple[Var, ...], env: Mapping[str, str]) -> dict[str, Any]:
    """Every variable of `table` from `env`, by field name; the first bad one raises SettingError."""
    values = {}
    for var in table:
        raw = env.get(var.name, "").strip()
        if not raw:
            values[var.field] = var.default
            continue
        try:
            values[var.field] = var.parse(raw)
        except Invalid as exc:
            raise invalid(var.name, raw, str(exc)) from None
    return values


def read_only(table: tuple[Var, ...], names: tuple[str, ...], env: Mapping[str, str]) -> dict[str, Any]:
    """Only the variables `names` of `table` (a helper process that needs a few), by field name."""
    chosen = tuple(var for var in table if var.name in names)
    unknown = set(names) - {var.name for var in chosen}
    if unknown:
        raise KeyError(f"not in the settings table: {', '.join(sorted(unknown))}")
    return read(chosen, env)


def settings_class(name: str, table: tuple[Var, ...], base: type = object, extra: tuple = ()) -> type:
    """A frozen dataclass with one field per variable (secrets out of its repr), plus `extra`
    fields computed from several variables; properties come from `base`."""
    fields = [(var.field, var.type, field(repr=not var.secret)) for var in table]
    return make_dataclass(name, [*fields, *extra], bases=(base,), frozen=True)


# ---- parsers: each returns a function of the raw value, and says what it allows ----

def whole(minimum: int = 0, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not re.fullmatch(r"[0-9]+", raw) or int(raw) < minimum:
            raise Invalid(f"expected a whole number >= {minimum}")
        if maximum is not None and int(raw) > maximum:
            raise Invalid(f"expected a whole number from {minimum} to {maximum}")
        return int(raw)
    return parse


def number(minimum: float, maximum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not minimum <= value <= maximum:  # NaN fails too
            raise Invalid(f"expected a number from {minimum:g} to {maximum:g}")
        return value
    return parse


def flag(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise Invalid("expected 1 or 0 (true/false, yes/no, on/off)")


def choice(*allowed: str, lower: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower() if lower else raw
        if value not in allowed:
            raise Invalid("expected one of " + "|".join(allowed))
        return value
    return parse


def url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise Invalid("expected an http:// or https:// URL with a host and no query")
    return raw.rstrip("/")


def matching(pattern: str, allowed: str, max_length: int = 0) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def parse(raw: str) -> str:
        if not compiled.fullmatch(raw) or (max_length and len(raw) > max_length):
            raise Invalid(allowed)
        return raw
    return parse


def absolute_path(raw: str) -> str:
    if not raw.startswith("/") or ".." in raw.split("/"):
        raise Invalid("expected an absolute path without '..'")
    return raw


def names(raw: str) -> frozenset[str]:
    """A comma-separated list of names without spaces."""
    items = [item.strip() for item in raw.split(",")]
    if any(any(ch.isspace() for ch in item) for item in items):
        raise Invalid("expected a comma-separated list of names without spaces")
    return frozenset(item for item in items if item)


def text(raw: str) -> str:
    return raw
