"""SSH settings and what devhub.config registers for SSH: scopes, roles, the gateway service,
handlers and templates."""

import logging
import os
from pathlib import Path

import pytest
from traitlets.config import Config

from devhub import config, ssh_handlers
from devhub.settings import SettingsError, load
from devhub.spawner import DevhubSpawner
from devhub.ssh_keystore import KeyStore

TEMPLATES = Path(ssh_handlers.__file__).parent / "templates"


def configured(tmp_path, **env):
    env = {"DATA_DIR": str(tmp_path / "data"), "PROXY_AUTH_TOKEN_FILE": str(tmp_path / "proxy/auth_token"),
           "SSH_GATEWAY_TOKEN_FILE": str(tmp_path / "sshgw-secret/api_token"), **env}
    c = Config()
    settings = load(env)
    config.configure(c, settings)
    return c, settings


def test_settings_defaults():
    s = load({})
    assert s.ssh_gateway is True
    assert s.ssh_gateway_token_file == "/srv/sshgw-secret/api_token"
    assert s.ssh_gateway_client_key_file == "/srv/sshgw-state/gateway_client_key.pub"
    assert s.ssh_max_keys_per_user == 10


@pytest.mark.parametrize(
    "env,message",
    [
        ({"SSH_MAX_KEYS_PER_USER": "0"}, "SSH_MAX_KEYS_PER_USER='0' is invalid: expected a whole number >= 1"),
        ({"SSH_MAX_KEYS_PER_USER": "ten"}, "SSH_MAX_KEYS_PER_USER='ten' is invalid"),
        ({"SSH_MAX_KEYS_PER_USER": "1001"}, "SSH_MAX_KEYS_PER_USER='1001' is invalid: expected a whole number from 1 to 1000"),
        ({"SSH_GATEWAY": "maybe"}, "SSH_GATEWAY='maybe' is invalid: expected 1 or 0"),
        ({"SSH_GATEWAY_TOKEN_FILE": "secret/api_token"}, "SSH_GATEWAY_TOKEN_FILE='secret/api_token' is invalid: expected an absolute path"),
        ({"SSH_GATEWAY_CLIENT_KEY_FILE": "/srv/../etc/key"}, "SSH_GATEWAY_CLIENT_KEY_FILE='/srv/../etc/key' is invalid"),
    ],
)
def test_bad_settings_refused(env, message):
    with pytest.raises(SettingsError) as info:
        load(env)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("raw,value", [("1", True), ("true", True), ("0", False), ("no", False), ("OFF", False)])
def test_flags(raw, value):
    assert load({"SSH_GATEWAY": raw}).ssh_gateway is value
    assert load({"SSH_MAX_KEYS_PER_USER": "25"}).ssh_max_keys_per_user == 25


def test_scopes_roles_handlers_templates(tmp_path):
    (tmp_path / "sshgw-secret").mkdir(mode=0o700)
    c, s = configured(tmp_path, SSH_MAX_KEYS_PER_USER="4")
    assert set(c.JupyterHub.custom_scopes) == {"custom:ssh-keys:read", "custom:ssh-keys:manage", "custom:ssh-route:read"}
    assert c.JupyterHub.custom_scopes["custom:ssh-keys:manage"]["subscopes"] == ["custom:ssh-keys:read"]
    assert all(d["description"] for d in c.JupyterHub.custom_scopes.values())
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["user"] == {"name": "user", "scopes": ["self", "custom:ssh-keys:manage!user",
                                                        "shares!user", "read:users:name"]}  # sharing (devhub.sharing)
    assert roles["ssh-gateway"] == {
        "name": "ssh-gateway",
        "scopes": ["custom:ssh-keys:read", "custom:ssh-route:read", "read:servers", "servers", "users:activity"],
        "services": ["ssh-gateway"],
    }
    assert "jupyterhub-idle-culler" in roles
    (gateway,) = [svc for svc in c.JupyterHub.services if svc["name"] == "ssh-gateway"]
    token_file = tmp_path / "sshgw-secret/api_token"
    assert gateway["api_token"] == token_file.read_text().strip() and len(gateway["api_token"]) == 64
    assert os.stat(token_file).st_mode & 0o777 == 0o600
    assert "url" not in gateway and "command" not in gateway
    # The same token on the next start.
    c2, _ = configured(tmp_path)
    assert [svc for svc in c2.JupyterHub.services if svc["name"] == "ssh-gateway"][0]["api_token"] == gateway["api_token"]

    patterns = {h[0]: h for h in c.JupyterHub.extra_handlers}
    assert set(patterns) == {
        "/api/devhub/ssh/users/([^/]+)/keys",
        "/api/devhub/ssh/users/([^/]+)/keys/([^/]+)",
        "/api/devhub/ssh/users/([^/]+)/route",
        "/api/devhub/ssh/users/([^/]+)/servers/([^/]+)/route",
        "/ssh-keys",
        "/api/devhub/disk",  # devhub.disk_handlers
        "/disk-usage",
        "/api/devhub/metrics/gpus",  # devhub.metrics
        "/api/devhub/metrics/servers",
        "/sharing",  # devhub.sharing
    }
    store = patterns["/ssh-keys"][2]["store"]
    assert isinstance(store, KeyStore) and store.max_keys == 4
    assert store.path == tmp_path / "data" / "devhub-ssh-keys.sqlite"
    assert c.DeletesUserResources.ssh_key_store is store  # a deleted user's keys go (devhub.deletion)
    assert c.JupyterHub.template_paths == [str(TEMPLATES)]
    assert (TEMPLATES / "ssh-keys.html").is_file()
    assert '{% extends "templates/home.html" %}' in (TEMPLATES / "home.html").read_text()
    # The authenticator shares the one store (traitlets deep-copies config values).
    authenticator = c.JupyterHub.authenticator_class(config=c)
    assert authenticator.ssh_key_store is store


def test_gateway_off(tmp_path):
    (tmp_path / "sshgw-secret").mkdir(mode=0o700)
    c, _ = configured(tmp_path, SSH_GATEWAY="0")
    assert "ssh-gateway" not in [svc["name"] for svc in c.JupyterHub.services]
    assert "ssh-gateway" not in [r["name"] for r in c.JupyterHub.load_roles]
    assert not (tmp_path / "sshgw-secret/api_token").exists()
    # Users still manage their keys (e.g. for a gateway run outside the hub's compose project).
    assert len([h for h in c.JupyterHub.extra_handlers if "ssh" in h[0]]) == 5


def test_gateway_left_out_without_token_volume(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        c, _ = configured(tmp_path)
    assert "ssh-gateway" not in [svc["name"] for svc in c.JupyterHub.services]
    assert f"SSH gateway disabled: {tmp_path / 'sshgw-secret'} does not exist" in caplog.text
    assert not (tmp_path / "sshgw-secret").exists()
