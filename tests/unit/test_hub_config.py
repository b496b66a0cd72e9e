"""devhub.config and jupyterhub_config.py: what the hub is configured with, and refusing bad settings."""

import os
import subprocess
import sys
from pathlib import Path

from traitlets.config import Config

from devhub import config
from devhub.settings import load
from devhub.spawner import DevhubSpawner

ROOT = Path(__file__).resolve().parents[2]


def configured(tmp_path, **env):
    env = {"DATA_DIR": str(tmp_path / "data"), "PROXY_AUTH_TOKEN_FILE": str(tmp_path / "proxy/auth_token"), **env}
    c = Config()
    settings = load(env)
    config.configure(c, settings, tmp_path / "etc" / "jupyterhub_config.py")
    return c, settings


def test_hub_configuration(tmp_path, monkeypatch):
    monkeypatch.delenv("CONFIGPROXY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY", raising=False)
    c, s = configured(tmp_path, PROXY_API_URL="http://chp:9001", HUB_CONNECT_HOST="jupyterhub", SPAWN_TIMEOUT="300")
    assert c.JupyterHub.cleanup_servers is False
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.api_url == "http://chp:9001"
    token = (tmp_path / "proxy/auth_token").read_text().strip()
    assert c.ConfigurableHTTPProxy.auth_token == token and len(token) == 64
    assert (c.JupyterHub.hub_ip, c.JupyterHub.hub_port, c.JupyterHub.hub_connect_ip) == ("0.0.0.0", 8081, "jupyterhub")
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path}/data/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file == f"{tmp_path}/data/jupyterhub_cookie_secret"
    assert os.stat(c.JupyterHub.cookie_secret_file).st_mode & 0o777 == 0o600
    assert c.CryptKeeper["keys"] == [(tmp_path / "data/crypt_key").read_text().strip()]
    assert "JUPYTERHUB_CRYPT_KEY" not in os.environ  # the key is config, no process inherits it
    assert c.JupyterHub.spawner_class is DevhubSpawner
    spawner = c.DevhubSpawner  # the user servers' options, one by one
    assert (spawner.pids_limit, spawner.profiles, spawner.egress_policy) == (s.user_pids_limit, [], s.egress)
    assert (spawner.hub_connect_host, c.DockerSpawner.image, c.Spawner.mem_limit) == ("jupyterhub", s.user_image, "8G")
    assert c.Spawner.start_timeout == 300
    assert [svc["name"] for svc in c.JupyterHub.services] == ["jupyterhub-idle-culler"]
    assert c.JupyterHub.load_roles[0]["services"] == ["jupyterhub-idle-culler"]
    assert "not for production" in c.JupyterHub.template_vars["announcement"]
    assert c.GenericOAuthenticator.enable_auth_state is True


def test_no_demo_banner_with_real_provider(tmp_path):
    c, _ = configured(tmp_path, AUTH_PROVIDER="github", OAUTH_CLIENT_ID="i", OAUTH_CLIENT_SECRET="s",
                      ALLOWED_USERS="alice", IDLE_CULL_TIMEOUT="0")
    assert "template_vars" not in c.JupyterHub or "announcement" not in c.JupyterHub.template_vars
    assert c.JupyterHub.services == []


def test_overrides_load_last_sorted_by_name(tmp_path):
    data_d = tmp_path / "data" / "jupyterhub_config.d"
    etc_d = tmp_path / "etc" / "jupyterhub_config.d"
    data_d.mkdir(parents=True)
    etc_d.mkdir(parents=True)
    (etc_d / "10-first.py").write_text("c.Spawner.start_timeout = 11\nc.order = ['10']\n")
    (data_d / "20-second.py").write_text("c.Spawner.start_timeout = 22\nc.order = c.order + ['20']\n")
    (etc_d / "30-third.py").write_text("c.order = c.order + ['30', settings.auth_provider]\n")
    (etc_d / "README.md").write_text("c.Spawner.start_timeout = 99\n")  # not a .py file: ignored
    c, _ = configured(tmp_path)
    assert c.Spawner.start_timeout == 22
    assert c.order == ["10", "20", "30", "demo"]


def run_hub(tmp_path, *args, **env):
    full = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT / "hub"),
        "DATA_DIR": str(tmp_path / "data"),
        "PROXY_AUTH_TOKEN_FILE": str(tmp_path / "proxy/auth_token"),
        **env,
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(ROOT / "jupyterhub_config.py"), *args],
        env=full, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )


def test_hub_refuses_to_start_with_bad_setting(tmp_path):
    result = run_hub(tmp_path, AUTH_PROVIDER="bogus")
    assert result.returncode != 0
    assert "devhub: refusing to start: AUTH_PROVIDER='bogus' is invalid: expected one of github|gitlab|oidc|demo" in result.stderr


def test_hub_refuses_to_start_with_leaky_secret(tmp_path):
    (tmp_path / "data").mkdir()
    key = tmp_path / "data" / "crypt_key"
    key.write_text("a" * 64)
    key.chmod(0o644)
    result = run_hub(tmp_path)
    assert result.returncode != 0
    assert f"devhub: refusing to start: secret file {key} has mode 644" in result.stderr
    assert "a" * 64 not in result.stderr + result.stdout


def test_config_file_loads_in_jupyterhub(tmp_path):
    result = run_hub(tmp_path, "--show-config", AUTH_PROVIDER="oidc", OAUTH_CLIENT_ID="i", OAUTH_CLIENT_SECRET="s",
                     OIDC_AUTHORIZE_URL="https://idp/a", OIDC_TOKEN_URL="https://idp/t",
                     OIDC_USERDATA_URL="https://idp/u", ALLOWED_GROUPS="ml")
    assert result.returncode == 0, result.stderr
    assert "GenericOAuthenticator" in result.stdout and "https://idp/a" in result.stdout
    assert "DevhubSpawner" in result.stdout


def test_public_url_makes_cookies_secure_behind_the_proxies(tmp_path):
    from traitlets.config import Config

    from devhub import config as devhub_config
    from devhub.settings import load

    c = Config()
    devhub_config.configure(c, load({"DATA_DIR": str(tmp_path / "data"), "PROXY_AUTH_TOKEN_FILE": str(tmp_path / "t"),
                                     "PUBLIC_URL": "https://devhub.example.com:8443"}))
    assert c.JupyterHub.public_url == "https://devhub.example.com:8443/"


def test_each_users_server_gets_its_own_origin_by_default(tmp_path, caplog):
    c, _ = configured(tmp_path, PUBLIC_URL="https://devhub.example.com:8443")
    # JupyterHub then serves alice at https://alice.devhub.example.com:8443/user/alice/.
    assert c.JupyterHub.subdomain_host == "https://devhub.example.com:8443"
    assert "SERVER_ROUTING=path" not in caplog.text


def test_path_routing_is_opt_in_with_a_warning(tmp_path, caplog):
    c, _ = configured(tmp_path / "p", PUBLIC_URL="https://10.1.2.3", SERVER_ROUTING="path")
    assert "subdomain_host" not in c.JupyterHub
    assert "SERVER_ROUTING=path: every user's server shares the hub's origin https://10.1.2.3" in caplog.text


def test_hub_listens_on_the_address_its_network_name_resolves_to(tmp_path):
    c, _ = configured(tmp_path, HUB_BIND_HOST="localhost", USERS_HUB_API_URL="http://hub-api:8081")
    assert c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.Spawner.hub_connect_url == "http://hub-api:8081"
    import pytest

    from devhub.settings import SettingsError

    with pytest.raises(SettingsError, match="HUB_BIND_HOST='no-such-host.invalid' does not resolve"):
        configured(tmp_path / "bad", HUB_BIND_HOST="no-such-host.invalid")
