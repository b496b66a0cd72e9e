"""devhub.access: SSH asks the web login's authenticator, with the login it stored, every time."""

import asyncio
import logging

import pytest
from traitlets.config import Config

from devhub import access, auth
from devhub.settings import load


class User:
    """What ssh_refusal reads of a hub user: name, admin flag, stored auth state."""

    def __init__(self, name, auth_state, admin=False):
        self.name, self.admin, self._auth_state = name, admin, auth_state

    async def get_auth_state(self):
        return self._auth_state


LOGGED_IN = {"access_token": "t", "oauth_user": {"sub": "x"}}


@pytest.fixture
def authenticator(tmp_path):
    c = Config()
    cls = auth.apply(c, load({"DATA_DIR": str(tmp_path)}), logging.getLogger("test"))  # the demo: alice, bob
    return cls(config=c)


@pytest.mark.parametrize("user, blocked, refusal", [
    (User("bob", LOGGED_IN), set(), None),
    (User("alice", LOGGED_IN, admin=True), set(), None),
    (User("bob", LOGGED_IN), {"bob"}, "bob is blocked on this hub"),
    (User("carol", LOGGED_IN), set(), "carol is no longer allowed on this hub"),  # not (or no longer) in the allow list
    (User("bob", None), set(), "bob has not logged in on the web yet"),  # e.g. created by an admin
])
def test_ssh_refusal(authenticator, user, blocked, refusal):
    authenticator.blocked_users = blocked
    assert asyncio.run(access.ssh_refusal(authenticator, user)) == refusal
