"""devhub.secrets: generated once with mode 600, reused, and bad files refused with a clear error."""

import os
import stat

import pytest

from devhub import secrets


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_generated_once_and_persisted(tmp_path):
    first = secrets.load(tmp_path / "data", tmp_path / "proxy" / "auth_token", env={})
    for f in ("data/jupyterhub_cookie_secret", "data/crypt_key", "proxy/auth_token"):
        assert mode(tmp_path / f) == 0o600
    for value in (first.cookie_secret, first.crypt_key, first.proxy_auth_token):
        assert len(value) == 64 and int(value, 16) >= 0
    assert len({first.cookie_secret, first.crypt_key, first.proxy_auth_token}) == 3
    again = secrets.load(tmp_path / "data", tmp_path / "proxy" / "auth_token", env={})
    assert again == first
    assert (tmp_path / "data/crypt_key").read_text().strip() == first.crypt_key
    assert first.cookie_secret_file == tmp_path / "data" / "jupyterhub_cookie_secret"


def test_secrets_not_in_repr(tmp_path):
    s = secrets.load(tmp_path, tmp_path / "t", env={})
    for value in (s.cookie_secret, s.crypt_key, s.proxy_auth_token):
        assert value not in repr(s)


def test_proxy_token_from_environment(tmp_path):
    s = secrets.load(tmp_path, tmp_path / "t", env={"CONFIGPROXY_AUTH_TOKEN": "from-env"})
    assert s.proxy_auth_token == "from-env"
    assert not (tmp_path / "t").exists()


def test_refuses_group_readable_file(tmp_path):
    f = tmp_path / "crypt_key"
    f.write_text("a" * 64 + "\n")
    f.chmod(0o644)
    with pytest.raises(secrets.SecretError) as info:
        secrets.load(tmp_path, tmp_path / "t", env={})
    assert str(f) in str(info.value) and "644" in str(info.value) and "chmod 600" in str(info.value)
    assert "a" * 64 not in str(info.value)


@pytest.mark.parametrize("content", ["", "short", "Z" * 64, "a" * 63, "a" * 65])
def test_refuses_bad_content(tmp_path, content):
    f = tmp_path / "jupyterhub_cookie_secret"
    f.write_text(content)
    f.chmod(0o600)
    with pytest.raises(secrets.SecretError) as info:
        secrets.load(tmp_path, tmp_path / "t", env={})
    assert str(f) in str(info.value) and "64 lowercase hex digits" in str(info.value)


def test_refuses_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("a" * 64)
    target.chmod(0o600)
    (tmp_path / "crypt_key").symlink_to(target)
    with pytest.raises(secrets.SecretError, match="not a regular file"):
        secrets.load(tmp_path, tmp_path / "t", env={})


def test_concurrent_creators_agree(tmp_path):
    # The proxy and the hub may both create the token: the second must read the first's.
    path = tmp_path / "auth_token"
    a = secrets.read_or_create(path)
    b = secrets.read_or_create(path)
    assert a == b
    assert [p.name for p in tmp_path.iterdir()] == ["auth_token"]  # no temporary files left


def test_token_shared_with_another_user_by_a_group(tmp_path):
    """The SSH gateway runs as its own user: the hub gives it the token by a group, nothing more."""
    gid = os.getgid()  # a group this process belongs to, as the hub belongs to SSH_GATEWAY_TOKEN_GID
    token_file = tmp_path / "sshgw-secret" / "api_token"
    value = secrets.read_or_create(token_file, group=gid)
    assert (stat.S_IMODE(token_file.stat().st_mode), token_file.stat().st_gid) == (0o640, gid)
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o2750
    assert secrets.read_or_create(token_file, group=gid) == value
    # An existing private token (from before the gateway had its own user) is converted, not replaced.
    old = tmp_path / "old" / "api_token"
    previous = secrets.read_or_create(old)
    assert secrets.read_or_create(old, group=gid) == previous and stat.S_IMODE(old.stat().st_mode) == 0o640
    # Still refused: readable by others, or by a group it was not given to.
    token_file.chmod(0o644)
    with pytest.raises(secrets.SecretError, match="has mode 644"):
        secrets.read_or_create(token_file, group=gid)
    token_file.chmod(0o640)
    with pytest.raises(secrets.SecretError, match="has mode 640"):
        secrets.read_or_create(token_file)
