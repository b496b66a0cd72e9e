"""devhub.identity: a hub account stays with the provider identity that first used it."""

import json
import os
from types import SimpleNamespace

import pytest
from tornado import web

from devhub import identity


class Handler:
    """The one thing the hook asks the login handler: does the hub have this account?"""

    def __init__(self, *existing):
        self.existing = set(existing)
        self.request = SimpleNamespace(remote_ip="192.0.2.7")  # the audit line names it

    def find_user(self, name):
        return object() if name in self.existing else None


def model(name, **oauth_user):
    return {"name": name, "admin": False, "auth_state": {"oauth_user": oauth_user}}


@pytest.fixture
def hook(tmp_path):
    return identity.pinning_hook("oidc", identity.Pins(tmp_path / "data" / identity.FILE_NAME))


def test_first_login_pins_and_the_same_identity_comes_back(hook, tmp_path):
    assert hook(None, Handler(), model("alice", sub="s-1"))["name"] == "alice"
    assert hook(None, Handler("alice"), model("alice", sub="s-1"))["name"] == "alice"
    assert os.stat(tmp_path / "data" / identity.FILE_NAME).st_mode & 0o777 == 0o600


def test_a_renamed_identity_cannot_take_over_the_name(hook, caplog, capsys):
    hook(None, Handler(), model("alice", sub="s-1"))
    with pytest.raises(web.HTTPError) as refused:
        hook(None, Handler("alice"), model("alice", sub="s-2"))
    assert refused.value.status_code == 403
    assert "belongs to another oidc identity" in refused.value.log_message
    assert "Refused login of 'alice': pinned to another oidc subject than 's-2'" in caplog.text
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"login_refused"' in x]
    assert (line["user"], line["source"], line["reason"]) == ("alice", "192.0.2.7", "pinned to another oidc identity")
    assert hook(None, Handler("alice"), model("alice", sub="s-1"))  # the owner still gets in


def test_a_deleted_account_frees_the_name(hook):
    hook(None, Handler(), model("alice", sub="s-1"))
    # The admin deleted alice in the hub: a new person may take the name, and is pinned in turn.
    assert hook(None, Handler(), model("alice", sub="s-9"))
    with pytest.raises(web.HTTPError):
        hook(None, Handler("alice"), model("alice", sub="s-1"))


def test_no_subject_no_login(hook):
    with pytest.raises(web.HTTPError, match="403") as refused:
        hook(None, Handler(), model("alice", email="alice@example.org"))
    assert "no stable subject ('sub')" in refused.value.log_message


@pytest.mark.parametrize("provider, oauth_user, subject", [
    ("github", {"id": 583231, "login": "octocat"}, "583231"),
    ("gitlab", {"id": 42, "username": "alice"}, "42"),
    ("oidc", {"sub": "248289761001", "preferred_username": "alice"}, "248289761001"),
    ("demo", {"sub": "impostor", "preferred_username": "alice"}, "impostor"),
])
def test_the_stable_subject_of_each_provider(provider, oauth_user, subject):
    assert identity.subject_of(model("x", **oauth_user), provider) == subject


def test_every_authenticator_gets_the_hook(tmp_path, capsys):
    import logging

    from traitlets.config import Config

    from devhub import auth
    from devhub.settings import load

    c = Config()
    cls = auth.apply(c, load({"DATA_DIR": str(tmp_path)}), logging.getLogger("test"))
    authenticator = cls(config=c)
    assert authenticator.username_claim == "preferred_username"  # the demo behaves like OIDC
    assert authenticator.post_auth_hook(authenticator, Handler(), model("alice", sub="alice"))
    assert '"event": "login", "user": "alice", "source": "192.0.2.7"' in capsys.readouterr().out  # audit log
    with pytest.raises(web.HTTPError):
        authenticator.post_auth_hook(authenticator, Handler("alice"), model("alice", sub="impostor"))
    # '+' names a server in SSH logins (alice+exp1): a name holding it is refused, saying why.
    with pytest.raises(web.HTTPError) as info:
        authenticator.post_auth_hook(authenticator, Handler(), model("a+b", sub="a+b"))
    assert info.value.status_code == 403 and "contains '+', which SSH logins use to name a server" in info.value.log_message
