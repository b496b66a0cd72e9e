"""devhub.egress: the egress policy settings, the squid configuration it renders, the per-user proxy
credentials and what DevhubSpawner gives user servers. (The proxy itself is exercised for real in
tests/stack/test_user_environment.py.)"""

import io
import subprocess

import pytest
from test_hub_spawner import created, fake_docker, make_spawner, run  # noqa: F401 - fixture

from devhub import egress
from devhub.settings import SettingsError, load


def test_default_policy_is_proxy_with_package_and_code_hosts():
    policy = load({}).egress
    assert policy.enabled
    for host in ("pypi.org", "files.pythonhosted.org", ".github.com", ".gitlab.com", "update.code.visualstudio.com"):
        assert host in policy.allow


@pytest.mark.parametrize("raw, expected", [
    ("pypi.org", ("pypi.org",)),
    ("*.github.com, github.com api.github.com", (".github.com",)),
    ("PyPI.org,pypi.org", ("pypi.org",)),
    ("*", ("*",)),
])
def test_allowlist_normalised(raw, expected):
    assert load({"EGRESS_ALLOW": raw}).egress.allow == expected


@pytest.mark.parametrize("env, message", [
    ({"EGRESS": "on"}, "EGRESS='on' is invalid: expected proxy"),
    ({"EGRESS_ALLOW": "pypi.org,under_score.com"}, "'under_score.com' is not a domain"),
    ({"EGRESS_ALLOW": "*, pypi.org"}, "'*' (any public host) cannot be combined"),
    ({"EGRESS_ALLOW": "http://pypi.org"}, "is not a domain"),
    ({"EGRESS_DENY": "10.0.0.0/8, example.com"}, "'example.com' is not an IP address or network"),
    ({"EGRESS_UPSTREAM_PROXY": "https://corp:3128"}, "expected http://[user:password@]host:port"),
    ({"EGRESS_UPSTREAM_PROXY": "http://user:secret@corp"}, "EGRESS_UPSTREAM_PROXY='http://***@corp'"),
])
def test_bad_settings_are_refused_with_the_variable_named(env, message):
    with pytest.raises(SettingsError) as info:
        load(env)
    assert message in str(info.value)
    assert "secret" not in str(info.value)


def test_extra_ca_validated(tmp_path):
    good = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=devhub test CA", "-days", "1", "-keyout", str(tmp_path / "key"), "-out", str(good)],
                   check=True, capture_output=True)
    assert load({"USER_EXTRA_CA_FILE": str(good)}).user_extra_ca.startswith("-----BEGIN CERTIFICATE-----")
    empty = tmp_path / "empty"
    empty.write_text("")
    assert load({"USER_EXTRA_CA_FILE": str(empty)}).user_extra_ca == ""  # compose mounts /dev/null when unset
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(SettingsError, match="USER_EXTRA_CA_FILE=.*expected PEM CA certificates"):
        load({"USER_EXTRA_CA_FILE": str(bad)})
    with pytest.raises(SettingsError, match="cannot read the file"):
        load({"USER_EXTRA_CA_FILE": str(tmp_path / "missing.pem")})


def test_squid_config_order_blocks_internal_before_allowlist():
    conf = egress.squid_config(load({"PUBLIC_URL": "https://devhub.example.com"}).egress, "/k", "/helper")
    rules = [line for line in conf.splitlines() if line.startswith("http_access")]
    # Who first (every log line names a user), then internal addresses on any port, then ports, then names.
    assert rules[:4] == ["http_access deny !devhub_user", "http_access deny blocked_dst", "http_access deny !web_ports",
                         "http_access deny CONNECT !tls_port"]
    assert rules.index("http_access deny blocked_dst") < rules.index("http_access deny !allowed_domains")
    assert rules[-1] == "http_access deny all"
    assert "169.254.0.0/16" in conf and "172.16.0.0/12" in conf and "127.0.0.0/8" in conf and "fc00::/7" in conf
    assert "acl devhub_self dstdomain .devhub.example.com" in conf  # and users' origins below it
    assert "auth_param basic program /helper /k" in conf
    assert "never_direct" not in conf


def test_host_addresses_and_operator_networks_are_blocked():
    policy = load({"EGRESS_DENY": "203.0.113.0/24", "EGRESS_HOST_ADDRESSES": "192.0.2.2 fd00::2 10.1.2.3"}).egress
    blocked = next(line for line in egress.squid_config(policy, "/k", "/h").splitlines() if line.startswith("acl blocked_dst"))
    assert "203.0.113.0/24" in blocked and "192.0.2.2/32" in blocked and "fd00::2/128" in blocked
    assert blocked.count("10.0.0.0/8") == 1


def test_squid_config_any_host_and_upstream():
    policy = load({"EGRESS_ALLOW": "*", "EGRESS_UPSTREAM_PROXY": "http://svc:p%40ss@corp.example:8080"}).egress
    conf = egress.squid_config(policy, "/k", "/helper")
    assert "allowed_domains" not in conf
    assert "http_access allow devhub_user" in conf and "http_access deny blocked_dst" in conf
    assert "cache_peer corp.example parent 8080 0 no-query no-digest default login=svc:p%40ss" in conf
    assert "never_direct allow all" in conf


def test_auth_helper_accepts_only_the_users_own_credential(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("k" * 64 + "\n")
    alice = egress.password("k" * 64, "alice")
    lines = f"alice {alice}\nbob {alice}\nalice wrong\ngarbage\n"
    out = io.StringIO()
    egress.auth_helper(str(key_file), io.StringIO(lines), out)
    assert [line.split(" ")[0] for line in out.getvalue().splitlines()] == ["OK", "ERR", "ERR", "ERR"]


def test_spawner_gives_the_server_its_proxy_and_no_dns(tmp_path, fake_docker):
    key_dir = tmp_path / "egress-secret"
    key_dir.mkdir()
    sp = make_spawner(tmp_path, "alice", EGRESS_KEY_FILE=str(key_dir / "key"))
    run(sp.start())
    kw = created(fake_docker)
    env = kw["environment"]
    key = (key_dir / "key").read_text().strip()
    expected = f"http://alice:{egress.password(key, 'alice')}@egress:3128"
    assert env["HTTPS_PROXY"] == env["http_proxy"] == expected
    assert env["NO_PROXY"].split(",")[-1] == "hub" and "127.0.0.1" in env["NO_PROXY"]
    assert env["DEVHUB_USER"] == "alice" and env["DEVHUB_EGRESS"] == "proxy"
    assert key not in str(env)  # the key itself never reaches a user container
    assert kw["host_config"]["Dns"] == [egress.UNANSWERED_DNS]
    assert kw["host_config"]["DnsOptions"] == ["timeout:1", "attempts:1"]
    assert kw["hostname"] == "devhub-alice"
    assert "egress" in sp.connect_services


def test_spawner_with_egress_off(tmp_path, fake_docker):
    sp = make_spawner(tmp_path, "alice", EGRESS="off")
    run(sp.start())
    env = created(fake_docker)["environment"]
    assert not any(name.lower().endswith("_proxy") for name in env)
    assert env["DEVHUB_EGRESS"] == "off" and "egress-is-disabled" in env["PIP_INDEX_URL"]
    assert "egress" not in sp.connect_services


def test_default_allowlist_has_no_entry_squid_would_refuse_as_redundant():
    assert egress._without_redundant(list(egress.DEFAULT_ALLOW)) == egress.DEFAULT_ALLOW
