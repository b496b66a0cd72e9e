"""configure(c, settings): everything devhub sets on the JupyterHub config object.

Operators can override any of it without rebuilding: every *.py file in
DATA_DIR/jupyterhub_config.d/ (/srv/jupyterhub/jupyterhub_config.d/, on the hub-data volume) and in
jupyterhub_config.d/ next to the config file is executed last, sorted by file name, with `c` and
`settings` in scope.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from . import (audit, auth, disk, disk_handlers, gpus, logsafe, metrics, names, recent_login, scopes, secrets,
               services, sharing, ssh_handlers)
from .settings import Settings, SettingsError
from .spawner import DevhubSpawner

log = logging.getLogger("JupyterHub")  # the hub app's logger: same format as its own lines


def configure(c, settings: Settings, config_file: str | os.PathLike | None = None) -> None:
    logsafe.install()  # request input (user names, URL paths) cannot start log lines of its own
    # Every request's log line, then the audit line it stands for (devhub.audit).
    c.JupyterHub.tornado_settings = {"log_function": audit.log_request}
    data = Path(settings.data_dir)
    hub_secrets = secrets.for_hub(settings, log)  # every secret, created on first start in this one place

    # Hub process and database; the proxy runs as its own service (devhub.proxy).
    c.JupyterHub.bind_url = "http://0.0.0.0:8000"  # the public side is the proxy's, this is its default
    # Only on the hub's own network when HUB_BIND_HOST names it: the hub also joins every user network
    # (to see servers come up), and users must reach its API only through nginx and the proxy.
    c.JupyterHub.hub_ip = bind_address(settings.hub_bind_host)
    c.JupyterHub.hub_port = 8081
    c.JupyterHub.hub_connect_ip = settings.hub_connect_host
    c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.pid_file = str(data / "jupyterhub.pid")
    c.JupyterHub.cookie_secret_file = str(hub_secrets.cookie_secret_file)
    # The URL users open: cookies get Secure from it (https), whatever the proxies in between say.
    c.JupyterHub.public_url = settings.public_url + "/"
    routing(c, settings)
    recent_login.apply(0 if settings.subdomains else settings.recent_login_seconds)
    c.JupyterHub.cleanup_servers = False  # user servers survive hub restarts and upgrades
    c.JupyterHub.cleanup_proxy = False
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = settings.proxy_api_url
    c.ConfigurableHTTPProxy.auth_token = hub_secrets.proxy_auth_token
    # Auth state (OAuth tokens) is encrypted with this key, given as config rather than through the
    # environment (JUPYTERHUB_CRYPT_KEY), so no process the hub starts inherits it.
    c.CryptKeeper["keys"] = [hub_secrets.crypt_key]  # item, not attribute: Config.keys is dict.keys

    # Authentication.
    auth.apply(c, settings, log)
    # Disk: home volumes measured, a soft limit that warns, room kept for the hub's database.
    usage = home_usage(settings)
    c.JupyterHub.template_vars = {"devhub_disk_notice": usage.page_notice,
                                  **({"announcement": auth.DEMO_BANNER} if settings.is_demo else {})}

    # User servers.
    c.JupyterHub.spawner_class = DevhubSpawner
    spawner_options(c, settings)
    c.DevhubSpawner.egress_key = hub_secrets.egress_key  # "" without the egress volume (warned)
    c.Spawner.start_timeout = settings.spawn_timeout
    c.Spawner.http_timeout = settings.spawn_timeout
    # Named servers (each its own container, network and GPUs; one home per user): the default
    # server counts as one of MAX_SERVERS_PER_USER, JupyterHub's limit counts the named ones.
    c.JupyterHub.allow_named_servers = settings.named_servers
    c.JupyterHub.named_server_limit_per_user = settings.max_servers_per_user - 1

    # SSH: users' keys (API, page, scopes) and the gateway's service identity.
    c.DeletesUserResources.ssh_key_store = ssh_handlers.apply(c, settings, usage)
    c.JupyterHub.extra_handlers = [*c.JupyterHub.extra_handlers, *disk_handlers.handlers(usage), *metrics_handlers(settings, usage),
                                   *sharing.handlers()]
    gateway, gateway_roles = services.ssh_gateway(hub_secrets.gateway_token)
    reader, reader_roles = services.metrics_reader(hub_secrets.metrics_token)

    # Services.
    svc, roles = services.services_and_roles(settings)
    audit.CULL_REASONS.update(services.cull_reasons(settings))
    c.JupyterHub.services = svc + gateway + reader
    c.JupyterHub.load_roles = roles + gateway_roles + reader_roles + [scopes.USER_ROLE]

    load_overrides(c, settings, config_file)


# DevhubSpawner's own options: trait -> the Settings field it is set from.
DEVHUB_SPAWNER_OPTIONS = {
    "profiles": "profiles", "gpu_mode": "gpu_mode", "gpu_devices": "gpu_devices",
    "pids_limit": "user_pids_limit", "shm_size": "user_shm_size", "tmp_size": "user_tmp_size",
    "datasets_source": "datasets_source", "home_volume_prefix": "user_volume_prefix",
    "network_prefix": "user_network_prefix", "network_pool": "user_network_pool", "on_user_delete": "on_user_delete", "extra_ca": "user_extra_ca",
    "egress_policy": "egress", "hub_connect_host": "hub_connect_host", "ssh_gateway": "ssh_gateway",
    "gateway_client_key_file": "ssh_gateway_client_key_file",
}


def spawner_options(c, settings: Settings) -> None:
    """The user servers' options, each on the class that declares it, so that a jupyterhub_config.d
    file overrides any one of them (c.Spawner.mem_limit as well as c.DevhubSpawner.mem_limit)."""
    c.DockerSpawner.image = settings.user_image
    c.Spawner.mem_limit = settings.user_mem_limit
    c.Spawner.cpu_limit = settings.user_cpu_limit
    if settings.users_hub_api_url:  # user servers reach the hub's API at nginx's internal listener
        c.Spawner.hub_connect_url = settings.users_hub_api_url
    for trait, field in DEVHUB_SPAWNER_OPTIONS.items():
        value = getattr(settings, field)
        setattr(c.DevhubSpawner, trait, list(value) if isinstance(value, tuple) else value)  # List traits


def home_usage(settings: Settings) -> disk.HomeUsage:
    """Measured (and the reserve kept) in the background from the hub's first request on."""
    reserve = disk.Reserve(settings.data_dir, settings.hub_disk_reserve)
    return disk.HomeUsage(lambda user: names.ServerObjects(user=user, volume_prefix=settings.user_volume_prefix).home,
                          settings.user_home_soft_limit, settings.disk_usage_interval, reserve)


def metrics_handlers(settings: Settings, usage: disk.HomeUsage) -> list[tuple]:
    """devhub's Prometheus targets (GPU pool, users' servers) next to JupyterHub's /hub/metrics."""
    servers = metrics.Servers(disk.docker_api, settings.user_network_prefix, usage, usage.reserve,
                              settings.metrics_user_labels)
    return metrics.handlers(lambda: gpus.shared_pool(settings.gpu_devices, disk.docker_api()), servers,
                            settings.metrics_user_labels)


def bind_address(host: str) -> str:
    """The IPv4 address `host` resolves to (Docker's DNS answers a service name with its address on
    the one network it is named on); all addresses for ""."""
    if not host:
        return "0.0.0.0"
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        raise SettingsError(f"HUB_BIND_HOST={host!r} does not resolve ({exc}): name the hub's own network "
                            "address, or leave it empty to listen on all") from None


def routing(c, settings: Settings) -> None:
    """Per-user origins (https://alice.<host>/) unless the operator opted in to path routing: on one
    shared origin, a user's own page served from their server is script on the hub's origin."""
    if settings.subdomains:
        c.JupyterHub.subdomain_host = settings.public_url
        return
    log.warning(
        "SERVER_ROUTING=path: every user's server shares the hub's origin %s, so a page a user serves "
        "from their own server can act as anyone who opens it (JupyterHub's security docs); SSH key "
        "changes and new API tokens from a browser need a login in the last %d s. Use "
        "SERVER_ROUTING=subdomain with wildcard DNS and a wildcard certificate.", settings.public_url,
        settings.recent_login_seconds)


def override_dirs(settings: Settings, config_file: str | os.PathLike | None) -> list[Path]:
    dirs = [Path(settings.data_dir) / "jupyterhub_config.d"]
    if config_file:
        dirs.append(Path(config_file).resolve().parent / "jupyterhub_config.d")
    return dirs


def load_overrides(c, settings: Settings, config_file: str | os.PathLike | None = None) -> list[Path]:
    """Execute the operator's *.py overrides (see module doc); return the files run, in order."""
    files = []
    for d in override_dirs(settings, config_file):
        if d.is_dir():
            files += [f for f in d.iterdir() if f.suffix == ".py" and f.is_file()]
    files.sort(key=lambda f: (f.name, str(f)))
    for f in files:
        log.info("Loading config override %s", f)
        code = compile(f.read_text(encoding="utf-8"), str(f), "exec")
        exec(code, {"c": c, "settings": settings, "__file__": str(f), "__name__": "jupyterhub_config_d"})
    return files
