"""devhub.settings: environment variables -> validated Settings, clear errors naming the variable."""

import json
import re
from pathlib import Path

import pytest

from devhub import egress, settings
from devhub.settings import SettingsError, load

REAL = {"AUTH_PROVIDER": "github", "OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "secret"}


def test_defaults():
    s = load({})
    assert s.public_url == "https://devhub.localhost"
    assert s.server_routing == "subdomain" and s.subdomains
    assert s.auth_provider == "demo"
    assert s.demo_oidc_url == "http://oidc:8080"
    assert s.demo_oidc_public_url == "https://devhub.localhost/demo-idp"
    assert s.user_image == "devhub/dev-gpu:latest"
    assert (s.user_mem_limit, s.user_cpu_limit, s.user_pids_limit, s.user_shm_size) == ("8G", 2.0, 1024, "1G")
    assert (s.gpu_mode, s.gpu_devices, s.profiles) == ("none", (), ())
    assert s.datasets_source == "devhub-datasets"
    assert (s.user_volume_prefix, s.user_network_prefix) == ("devhub-home-", "devhub-user-")
    assert (s.on_user_delete, s.idle_cull_timeout, s.spawn_timeout) == ("remove", 3600, 120)
    assert (s.hub_connect_host, s.proxy_api_url, s.ssh_port) == ("hub", "http://proxy:8001", 2222)
    assert s.data_dir == "/srv/jupyterhub"


def test_gateway_token_group():
    assert load({}).ssh_gateway_token_gid is None
    assert load({"SSH_GATEWAY_TOKEN_GID": "989"}).ssh_gateway_token_gid == 989
    with pytest.raises(SettingsError, match="SSH_GATEWAY_TOKEN_GID='x' is invalid"):
        load({"SSH_GATEWAY_TOKEN_GID": "x"})


def test_path_routing_is_an_opt_in_that_allows_addresses():
    s = load({"PUBLIC_URL": "https://10.0.0.5", "SERVER_ROUTING": "path"})
    assert (s.server_routing, s.subdomains) == ("path", False)


def test_demo_public_url_follows_public_url():
    s = load({"PUBLIC_URL": "https://dev.example.org:8443/"})
    assert s.public_url == "https://dev.example.org:8443"
    assert s.demo_oidc_public_url == "https://dev.example.org:8443/demo-idp"


def test_settings_are_frozen_and_secret_not_in_repr():
    s = load({**REAL, "OAUTH_CLIENT_SECRET": "hunter2-very-secret"})
    with pytest.raises(AttributeError):
        s.auth_provider = "demo"
    assert "hunter2" not in repr(s)


@pytest.mark.parametrize(
    "env, names, says",
    [
        ({"AUTH_PROVIDER": "bogus"}, ["AUTH_PROVIDER", "'bogus'"], "github|gitlab|oidc|demo"),
        ({"AUTH_PROVIDER": "github"}, ["OAUTH_CLIENT_ID"], "required"),
        ({"AUTH_PROVIDER": "gitlab", "OAUTH_CLIENT_ID": "x"}, ["OAUTH_CLIENT_SECRET"], "required"),
        ({**REAL, "AUTH_PROVIDER": "oidc"}, ["OIDC_AUTHORIZE_URL"], "required"),
        ({"PUBLIC_URL": "localhost"}, ["PUBLIC_URL", "'localhost'"], "http"),
        ({"SERVER_ROUTING": "both"}, ["SERVER_ROUTING", "'both'"], "subdomain|path"),
        ({"PUBLIC_URL": "https://10.0.0.5"}, ["SERVER_ROUTING=subdomain", "'10.0.0.5'"], "SERVER_ROUTING=path"),
        ({"PUBLIC_URL": "https://[::1]:8443"}, ["SERVER_ROUTING=subdomain", "'::1'"], "wildcard DNS"),
        ({"GPU_MODE": "some"}, ["GPU_MODE", "'some'"], "none, all"),
        ({"GPU_MODE": "0"}, ["GPU_MODE", "'0'"], "> 0"),
        ({"GPU_MODE": "2", "GPU_DEVICES": "0"}, ["GPU_DEVICES", "'0'"], "lists 1"),
        ({"GPU_DEVICES": "0,0"}, ["GPU_DEVICES"], "twice"),
        ({"GPU_DEVICES": "0;rm -rf"}, ["GPU_DEVICES"], "device"),
        ({"USER_MEM_LIMIT": "lots"}, ["USER_MEM_LIMIT", "'lots'"], "8G"),
        ({"USER_SHM_SIZE": "1"}, ["USER_SHM_SIZE"], "at least 4m"),
        ({"USER_CPU_LIMIT": "-1"}, ["USER_CPU_LIMIT", "'-1'"], "CPUs > 0"),
        ({"USER_PIDS_LIMIT": "ten"}, ["USER_PIDS_LIMIT", "'ten'"], "whole number"),
        ({"IDLE_CULL_TIMEOUT": "-5"}, ["IDLE_CULL_TIMEOUT"], "whole number >= 0"),
        ({"SPAWN_TIMEOUT": "1"}, ["SPAWN_TIMEOUT"], ">= 10"),
        ({"SSH_PORT": "70000"}, ["SSH_PORT"], "1-65535"),
        ({"ON_USER_DELETE": "shred"}, ["ON_USER_DELETE", "'shred'"], "remove|archive|keep"),
        ({"USER_VOLUME_PREFIX": "-x"}, ["USER_VOLUME_PREFIX"], "starting with a letter"),
        ({"USER_NETWORK_PREFIX": "a b"}, ["USER_NETWORK_PREFIX"], "[a-zA-Z0-9_.-]"),
        ({"USER_NETWORK_POOL": "10.213.0.0"}, ["USER_NETWORK_POOL", "'10.213.0.0'"], "/26 or larger"),
        ({"USER_NETWORK_POOL": "10.213.0.1/16"}, ["USER_NETWORK_POOL"], "such as 10.213.0.0/16"),
        ({"USER_NETWORK_POOL": "8.8.0.0/16"}, ["USER_NETWORK_POOL"], "private IPv4 network"),
        ({"USER_NETWORK_POOL": "fd00::/64"}, ["USER_NETWORK_POOL"], "such as 10.213.0.0/16"),
        ({"DATASETS_SOURCE": "../etc"}, ["DATASETS_SOURCE"], "volume name"),
        ({"DATASETS_SOURCE": "/data/../etc"}, ["DATASETS_SOURCE"], ".."),
        ({"USER_IMAGE": "Bad Image"}, ["USER_IMAGE"], "image reference"),
        ({"HUB_CONNECT_HOST": "hub;x"}, ["HUB_CONNECT_HOST"], "host name"),
        ({"PROXY_API_URL": "proxy:8001"}, ["PROXY_API_URL"], "http"),
        ({"ALLOWED_USERS": "alice"}, ["ALLOWED_USERS"], "not used with AUTH_PROVIDER=demo"),
        ({**REAL, "ALLOWED_GROUPS": "staff"}, ["ALLOWED_GROUPS"], "not used with AUTH_PROVIDER=github"),
        ({**REAL, "ALLOWED_USERS": "al ice"}, ["ALLOWED_USERS"], "without spaces"),
        ({"PROFILES": "relative.json"}, ["PROFILES"], "absolute path"),
        ({"PROFILES": "/nonexistent/profiles.json"}, ["PROFILES"], "cannot read"),
    ],
)
def test_invalid_settings_name_variable_value_and_allowed(env, names, says):
    with pytest.raises(SettingsError) as info:
        load(env)
    message = str(info.value)
    for name in names:
        assert name in message
    assert says in message


def test_lists_and_gpus():
    s = load({**REAL, "ALLOWED_USERS": " alice, bob ,", "ADMIN_USERS": "alice", "ALLOWED_ORGS": "acme:ml",
              "GPU_MODE": "2", "GPU_DEVICES": "0,1,GPU-6f2c1c2e-0000-4000-8000-000000000000"})
    assert s.allowed_users == {"alice", "bob"}
    assert s.admin_users == {"alice"}
    assert s.allowed_orgs == {"acme:ml"}
    assert s.gpus_per_server == 2
    assert s.gpu_devices == ("0", "1", "GPU-6f2c1c2e-0000-4000-8000-000000000000")
    assert load({"GPU_MODE": "ALL"}).gpu_mode == "all"


def test_datasets_host_path():
    assert load({"DATASETS_SOURCE": "/srv/datasets/"}).datasets_source == "/srv/datasets"


def test_profiles_json_and_yaml(tmp_path):
    profiles = [
        {"name": "small", "display_name": "Small", "cpu": 1, "mem": "4G", "gpus": 0},
        {"name": "gpu", "display_name": "One GPU", "cpu": 4, "mem": "16G", "gpus": 1},
    ]
    j = tmp_path / "p.json"
    j.write_text(json.dumps(profiles))
    y = tmp_path / "p.yaml"
    y.write_text("profiles:\n  - {name: small, cpu: 1, mem: 4G}\n  - {name: all, cpu: 8, mem: 32G, gpus: all}\n")
    s = load({"PROFILES": str(j), "GPU_DEVICES": "0,1"})
    assert [(p.name, p.display_name, p.cpu, p.mem, p.gpus) for p in s.profiles] == [
        ("small", "Small", 1.0, "4G", "none"),
        ("gpu", "One GPU", 4.0, "16G", "1"),
    ]
    s = load({"PROFILES": str(y)})
    assert [(p.name, p.display_name, p.gpus) for p in s.profiles] == [("small", "small", "none"), ("all", "all", "all")]


def test_profile_idle_timeouts_and_servers_per_user(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("- {name: cpu, idle_timeout: 28800}\n- {name: plain}\n")
    s = load({"PROFILES": str(f)})
    assert [(p.name, p.idle_timeout) for p in s.profiles] == [("cpu", 28800), ("plain", 0)]
    assert s.profile_idle_timeouts and not load({}).profile_idle_timeouts
    assert (load({}).max_servers_per_user, load({}).named_servers) == (3, True)
    assert not load({"MAX_SERVERS_PER_USER": "1"}).named_servers  # the default server only
    with pytest.raises(SettingsError, match=r"MAX_SERVERS_PER_USER='0' is invalid: expected a whole number >= 1"):
        load({"MAX_SERVERS_PER_USER": "0"})


@pytest.mark.parametrize(
    "content, says",
    [
        ("[]", "non-empty list"),
        ("{not json", "not valid JSON"),
        ('[{"name": "x", "cpus": 2}]', "unknown keys"),
        ('[{"name": "Bad Name"}]', "name must be"),
        ('[{"name": "a"}, {"name": "a"}]', "unique"),
        ('[{"name": "a", "gpus": 2}]', "GPU_DEVICES with at least 2"),
        ('[{"name": "a", "mem": "huge"}]', "mem"),
        ('[{"name": "a", "cpu": "0"}]', "cpu"),
        ('[{"name": "a", "idle_timeout": "1h"}]', "idle_timeout=1h' is invalid: expected whole seconds >= 0"),
        ('[{"name": "a", "idle_timeout": -5}]', "expected whole seconds"),
    ],
)
def test_bad_profiles(tmp_path, content, says):
    f = tmp_path / "profiles.json"
    f.write_text(content)
    with pytest.raises(SettingsError) as info:
        load({"PROFILES": str(f)})
    assert "PROFILES" in str(info.value)
    assert says in str(info.value)


# ---- the settings table and the documentation ----

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
ASSIGNMENT = re.compile(r"^#?([A-Z][A-Z0-9_]*)=(.*)$")
# Lines of .env.example that show an example, not the default: PUBLIC_URL's default comes from
# SERVER_NAME (compose), which the file sets just above.
EXAMPLES = {"PUBLIC_URL"}


def test_env_example_documents_every_operator_setting_with_its_default():
    shown = {m.group(1): m.group(2) for line in ENV_EXAMPLE.read_text().splitlines() if (m := ASSIGNMENT.match(line))}
    operator = {var.name: var for var in settings.TABLE if not var.internal}
    egress_vars = {name for name, (_, _, by_operators) in egress.VARIABLES.items() if by_operators}
    known = set(operator) | egress_vars | set(settings.COMPOSE_VARS)
    assert known - set(shown) == set(), "operator settings missing from .env.example"
    assert set(shown) - known == set(), ".env.example shows variables nobody reads"
    for name, var in operator.items():
        if name in EXAMPLES or var.default in ("", None, (), frozenset()):
            continue
        assert var.parse(shown[name]) == var.default, f".env.example shows {name}={shown[name]}, the default is {var.default!r}"
    for name in egress_vars:
        default = egress.VARIABLES[name][0]
        assert not default or shown[name] == default, name


def test_every_setting_is_declared_once_with_help():
    fields = [var.field for var in settings.TABLE]
    assert len(fields) == len(set(fields)) and len({var.name for var in settings.TABLE}) == len(fields)
    assert all(var.help.strip() for var in settings.TABLE)
    s = load({})
    for var in settings.TABLE:  # load() fills every field from the table (the demo IdP's public URL derived)
        if var.name != "DEMO_OIDC_PUBLIC_URL":
            assert getattr(s, var.field) == var.default, var.name
