"""The hub's secrets: generated on first start, persisted with mode 600, never printed.

- cookie secret  (DATA_DIR/jupyterhub_cookie_secret, 32 random bytes as hex: JupyterHub's own format)
- auth-state key (DATA_DIR/crypt_key, 32 random bytes as hex: JUPYTERHUB_CRYPT_KEY)
- proxy token    (PROXY_AUTH_TOKEN_FILE, 32 random bytes as hex): shared with the proxy service,
  which reads it through `python -m devhub.proxy`; kept outside DATA_DIR so the proxy never sees the
  hub's database or other secrets. CONFIGPROXY_AUTH_TOKEN in the environment takes precedence.
- the tokens of the services compose runs (SSH gateway, Prometheus) and the egress proxy's key, each
  in a volume shared with that one service (see read_or_create_shared).

`for_hub(settings, log)` creates or reads all of them, at start, in this one place.

An existing file that is readable by group/others, is not a regular file, or does not hold 64 hex
digits is refused with an error saying which file and what is wrong (the hub does not start).
"""

from __future__ import annotations

import os
import re
import secrets as _random
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import Settings

HEX64 = re.compile(r"^[0-9a-f]{64}$")
COOKIE_SECRET = "jupyterhub_cookie_secret"
CRYPT_KEY = "crypt_key"


class SecretError(RuntimeError):
    """A persisted secret is unusable; the message names the file and says how to fix it."""


@dataclass(frozen=True)
class HubSecrets:
    cookie_secret_file: Path
    cookie_secret: str = field(repr=False)
    crypt_key: str = field(repr=False)
    proxy_auth_token: str = field(repr=False)
    # Shared with one service each; None (or "") when its volume is not there to hand it over.
    gateway_token: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    egress_key: str = field(default="", repr=False)


def read_or_create(path: Path | str, group: int | None = None) -> str:
    """Return the 64-hex-digit secret in `path`, creating it (mode 600, atomically) if missing.

    With `group` (a gid this process belongs to), the file and its directory are given to that group,
    readable by it only (640, directory 2750): how the hub shares a token with a service that runs
    as another user (the SSH gateway). Existing files are converted."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return _share(path, group, _read(path, group))
    except FileNotFoundError:
        pass
    return _share(path, group, _create(path, group))


def _share(path: Path, group: int | None, value: str) -> str:
    if group is not None:
        try:
            for target, mode in ((path.parent, 0o2750), (path, 0o640)):
                os.chown(target, -1, group)
                os.chmod(target, mode)
        except OSError as exc:
            raise SecretError(f"cannot give {path} to group {group} ({exc.strerror}): the hub must run with that "
                              "group (compose: group_add)") from None
    return value


def _create(path: Path, group: int | None) -> str:
    value = _random.token_hex(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_random.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            # link() fails if another process (the proxy, a second hub) created it meanwhile: use theirs.
            os.link(tmp, path)
        except FileExistsError:
            return _read(path, group)
    finally:
        tmp.unlink(missing_ok=True)
    return value


def read_or_create_shared(path: Path | str, log, disabled: str, fix: str, group: int | None = None) -> str | None:
    """A secret whose directory is a volume shared with one other service (the SSH gateway, the egress
    proxy): read_or_create(path), or None with a warning "<disabled>: <dir> does not exist (<fix>)"
    when the volume is not mounted (nothing could hand the secret to that service)."""
    directory = Path(path).parent
    if not directory.is_dir():
        if log is not None:
            log.warning("%s: %s does not exist (%s)", disabled, directory, fix)
        return None
    return read_or_create(path, group)


def _read(path: Path, group: int | None = None) -> str:
    st = os.lstat(path)  # FileNotFoundError propagates: "create it"
    if not stat.S_ISREG(st.st_mode):
        raise SecretError(f"secret file {path} is not a regular file; remove it so a new secret is generated")
    shared = group is not None and st.st_gid == group and not st.st_mode & 0o037  # readable by its group only
    if st.st_mode & 0o077 and not shared:
        raise SecretError(
            f"secret file {path} has mode {stat.S_IMODE(st.st_mode):o}, readable by others than its owner; "
            f"run `chmod 600 {path}` (or remove it to generate a new one)"
        )
    if st.st_uid != os.geteuid():
        raise SecretError(f"secret file {path} is owned by uid {st.st_uid}, not by this process (uid {os.geteuid()})")
    value = path.read_text(encoding="ascii", errors="replace").strip()
    if not HEX64.fullmatch(value):
        raise SecretError(
            f"secret file {path} does not hold a secret of 64 lowercase hex digits; "
            "remove it to generate a new one (existing sessions and stored auth state become invalid)"
        )
    return value


def load(data_dir: Path | str, proxy_token_file: Path | str, env: dict[str, str] | None = None) -> HubSecrets:
    """Create or read every secret the hub needs."""
    env = dict(os.environ) if env is None else env
    data_dir = Path(data_dir)
    cookie_file = data_dir / COOKIE_SECRET
    token = env.get("CONFIGPROXY_AUTH_TOKEN", "").strip()
    if not token:
        token = read_or_create(proxy_token_file)
    return HubSecrets(
        cookie_secret_file=cookie_file,
        cookie_secret=read_or_create(cookie_file),
        crypt_key=read_or_create(data_dir / CRYPT_KEY),
        proxy_auth_token=token,
    )


def for_hub(settings: Settings, log=None, env: dict[str, str] | None = None) -> HubSecrets:
    """Every secret the hub's configuration uses, created on first start (mode 600, or 640 for the
    group a service reads its token by), read afterwards; a shared one whose volume is missing is
    None (the service is left out) with a warning naming the fix."""
    hub = load(settings.data_dir, settings.proxy_auth_token_file, env)
    gateway = metrics = None
    egress_key = ""
    if settings.ssh_gateway:
        gateway = read_or_create_shared(
            settings.ssh_gateway_token_file, log, "SSH gateway disabled",
            "mount the volume shared with the gateway there, or set SSH_GATEWAY_TOKEN_FILE; SSH_GATEWAY=0 silences this",
            group=settings.ssh_gateway_token_gid)
    metrics = read_or_create_shared(
        settings.metrics_token_file, log, "Metrics token not created",
        "mount the volume shared with Prometheus there, or set METRICS_TOKEN_FILE", group=settings.metrics_token_gid)
    if settings.egress.enabled:
        egress_key = read_or_create_shared(settings.egress_key_file, log, "Egress proxy disabled",
                                           "mount the volume shared with the egress service there, or set EGRESS=off") or ""
    return replace(hub, gateway_token=gateway, metrics_token=metrics, egress_key=egress_key)
