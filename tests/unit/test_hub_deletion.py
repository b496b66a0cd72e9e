"""devhub.deletion: deleting a user stops every server of theirs still running (before the default
server's delete_forever removes the home they mount) and deletes their SSH keys."""

import asyncio
import logging
from datetime import datetime
from types import SimpleNamespace

from traitlets.config import Config

from devhub import deletion, ssh_keystore
from devhub.ssh_keystore import owner_of
from test_hub_ssh_spawner import ed_line
from test_hub_spawner import FakeUser, fake_docker, make_spawner, run  # noqa: F401 - fixture


class Proxy:
    def __init__(self):
        self.deleted = []

    async def delete_user(self, user, name):
        self.deleted.append((user.name, name))


def authenticator(store):
    c = Config()
    c.DeletesUserResources.ssh_key_store = store
    return deletion.with_user_deletion(deletion.Authenticator)(config=c)


def test_named_servers_are_stopped_and_keys_deleted(tmp_path, fake_docker):
    store = ssh_keystore.KeyStore(tmp_path / "keys.sqlite", 10)
    alice = SimpleNamespace(id=1, created=datetime(2026, 1, 1), name="alice")
    bob = SimpleNamespace(id=2, created=datetime(2026, 1, 1), name="bob")
    store.add(owner_of(alice), "alice", "laptop", ed_line())
    store.add(owner_of(bob), "bob", "laptop", ed_line())
    default = make_spawner(tmp_path)
    named = make_spawner(tmp_path, server="exp1", user=default.user)
    run(named.start())
    default.server = None  # JupyterHub has stopped the default server before it calls the hook
    user = default.user
    user.orm_user, user.settings = alice, {"proxy": Proxy()}
    run(authenticator(store).delete_user(user))
    assert user.stopped == ["exp1"] and user.settings["proxy"].deleted == [("alice", "exp1")]
    run(named.delete_forever())  # what JupyterHub does next for each of the user's servers
    assert "devhub-user-alice-s-exp1" not in fake_docker.networks_
    assert not any(c["Name"] == "devhub-user-alice-s-exp1" for c in fake_docker.containers_.values())
    assert store.list(owner_of(alice)) == [] and len(store.list(owner_of(bob))) == 1


def test_keys_are_deleted_before_the_home_is_archived(tmp_path, fake_docker, monkeypatch):
    """An archive that fails (ON_USER_DELETE=archive) keeps the home, but the keys are gone already."""
    store = ssh_keystore.KeyStore(tmp_path / "keys.sqlite", 10)
    alice = SimpleNamespace(id=1, created=datetime(2026, 1, 1), name="alice")
    store.add(owner_of(alice), "alice", "laptop", ed_line())
    sp = make_spawner(tmp_path, ON_USER_DELETE="archive")
    sp.user.orm_user = alice
    fake_docker.volumes_["devhub-home-alice"] = {"Name": "devhub-home-alice"}
    monkeypatch.setattr(fake_docker, "wait", lambda *a, **k: {"StatusCode": 1})
    monkeypatch.setattr(fake_docker, "logs", lambda *a, **k: b"disk full", raising=False)
    run(authenticator(store).delete_user(sp.user))  # JupyterHub's order: the hook, then delete_forever
    try:
        run(sp.delete_forever())
    except RuntimeError as exc:
        assert "the home volume was kept" in str(exc)
    else:
        raise AssertionError("archiving was expected to fail")
    assert store.list(owner_of(alice)) == [] and "devhub-home-alice" in fake_docker.volumes_
