"""devhub.auth: provider -> authenticator class and settings; default deny; the demo stays a demo."""

import asyncio
import json
import logging

import pytest
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.gitlab import GitLabOAuthenticator
from traitlets.config import Config

from devhub import auth, demo_idp
from devhub.deletion import DeletesUserResources
from devhub.settings import SettingsError, load

CLIENT = {"OAUTH_CLIENT_ID": "cid", "OAUTH_CLIENT_SECRET": "csecret", "PUBLIC_URL": "https://dev.example.org"}
OIDC = {
    **CLIENT,
    "AUTH_PROVIDER": "oidc",
    "OIDC_AUTHORIZE_URL": "https://idp.example.org/authorize",
    "OIDC_TOKEN_URL": "https://idp.example.org/token",
    "OIDC_USERDATA_URL": "https://idp.example.org/userinfo",
}


def provider(authenticator) -> type:
    """The provider's authenticator class under devhub's user-deletion mixin (devhub.deletion)."""
    cls = type(authenticator)
    assert cls.__bases__[0] is DeletesUserResources and cls.__name__ == "Devhub" + cls.__bases__[1].__name__
    return cls.__bases__[1]


def build(env, caplog=None):
    """The authenticator JupyterHub would instantiate from this environment."""
    c = Config()
    cls = auth.apply(c, load(env), logging.getLogger("test"))
    assert c.JupyterHub.authenticator_class is cls
    return cls(config=c)


def allowed(authenticator, username, groups=(), oauth_user=None):
    """What the authenticator decides for a user the IdP vouched for.

    Runs oauthenticator's own token -> auth model -> check_allowed path; only the HTTP call that
    fetches the user's data from the provider is replaced by the data it would return.
    """
    user_info = {"id": 1, "email": f"{username}@example.org", "login": username, "username": username, "sub": username,
                 authenticator.username_claim if isinstance(authenticator.username_claim, str) else "sub": username,
                 "groups": list(groups), **(oauth_user or {})}
    token = {"access_token": "t", "token_type": "Bearer", "scope": ""}

    async def token_to_user(token_info):
        return user_info

    authenticator.token_to_user = token_to_user

    async def decide():
        model = await authenticator._token_to_auth_model(token)
        return await authenticator.check_allowed(model["name"], model), model

    return asyncio.run(decide())


def test_github():
    a = build({**CLIENT, "AUTH_PROVIDER": "github", "ALLOWED_USERS": "alice", "ALLOWED_ORGS": "acme,acme:ml",
               "ADMIN_USERS": "root"})
    assert provider(a) is GitHubOAuthenticator
    assert (a.client_id, a.client_secret) == ("cid", "csecret")
    assert a.oauth_callback_url == "https://dev.example.org/hub/oauth_callback"
    assert a.allowed_users == {"alice"}
    assert a.allowed_organizations == {"acme", "acme:ml"}
    assert a.admin_users == {"root"}
    assert "read:org" in a.scope
    assert a.enable_auth_state is True
    assert a.allow_all is False and a.allow_existing_users is False


def test_gitlab():
    a = build({**CLIENT, "AUTH_PROVIDER": "gitlab", "GITLAB_URL": "https://gitlab.example.org",
               "ALLOWED_ORGS": "ml-team"})
    assert provider(a) is GitLabOAuthenticator
    assert a.gitlab_url == "https://gitlab.example.org"
    assert a.allowed_gitlab_groups == {"ml-team"}
    assert a.authorize_url.startswith("https://gitlab.example.org/")


def test_oidc_groups():
    a = build({**OIDC, "ALLOWED_GROUPS": "ml", "ADMIN_GROUPS": "ops", "OIDC_USERNAME_CLAIM": "email",
               "OIDC_GROUPS_CLAIM": "roles"})
    assert provider(a) is GenericOAuthenticator
    assert (a.authorize_url, a.token_url, a.userdata_url) == (
        OIDC["OIDC_AUTHORIZE_URL"], OIDC["OIDC_TOKEN_URL"], OIDC["OIDC_USERDATA_URL"])
    assert a.username_claim == "email"
    assert a.manage_groups is True
    assert a.auth_state_groups_key == "oauth_user.roles"
    assert (a.allowed_groups, a.admin_groups) == ({"ml"}, {"ops"})
    assert "DEMO" not in a.login_service

    ok, model = allowed(a, "ann", oauth_user={"roles": ["ml"]})
    assert ok and not model["admin"]
    ok, model = allowed(a, "oscar", oauth_user={"roles": ["ops"]})
    assert ok and model["admin"]
    ok, _ = allowed(a, "mallory", oauth_user={"roles": ["sales"]})
    assert not ok


@pytest.mark.parametrize(
    "env",
    [
        {**CLIENT, "AUTH_PROVIDER": "github"},
        {**CLIENT, "AUTH_PROVIDER": "gitlab"},
        OIDC,
    ],
)
def test_default_deny(env, caplog):
    with caplog.at_level(logging.WARNING):
        a = build(env)
    assert "default deny" in caplog.text
    assert a.allow_all is False
    ok, _ = allowed(a, "mallory")
    assert not ok


def test_admins_only_when_no_allow_list():
    a = build({**OIDC, "ADMIN_USERS": "root"})
    assert allowed(a, "root")[0]
    assert not allowed(a, "mallory")[0]


def test_demo(caplog):
    with caplog.at_level(logging.WARNING):
        a = build({"PUBLIC_URL": "https://dev.example.org"})
    assert provider(a) is GenericOAuthenticator
    assert "DEMO identity provider" in caplog.text and "NOT FOR PRODUCTION" in caplog.text
    assert a.login_service == "DEMO identity provider (not for production)"
    assert a.authorize_url == "https://dev.example.org/demo-idp/oauth2/authorize"
    assert a.token_url == "http://oidc:8080/oauth2/token"
    assert a.userdata_url == "http://oidc:8080/userinfo"
    assert a.oauth_callback_url == "https://dev.example.org/hub/oauth_callback"
    assert a.allowed_users == set(demo_idp.demo_users()) == {"alice", "bob"}
    assert a.admin_users == {"alice"}
    assert allowed(a, "bob", oauth_user={"sub": "bob"})[0]
    assert not allowed(a, "mallory", oauth_user={"sub": "mallory"})[0]  # typed into the mock's form


@pytest.mark.parametrize("provider", ["github", "gitlab", "oidc"])
def test_demo_never_used_with_a_real_provider(provider):
    env = {**OIDC, "AUTH_PROVIDER": provider}
    cls, traits = auth.authenticator(load(env))
    for value in traits.values():
        assert "demo" not in str(value).lower() and "oidc:8080" not in str(value)
    assert traits["client_id"] == "cid"
    assert cls is not GenericOAuthenticator or traits["authorize_url"] == OIDC["OIDC_AUTHORIZE_URL"]


def test_demo_idp_command_line():
    args = demo_idp.argv(demo_idp.demo_users(), 8080)
    assert args[:4] == ["--host", "0.0.0.0", "--port", "8080"]
    claims = [json.loads(a) for a in args if a.startswith("{")]
    assert [c["sub"] for c in claims] == ["alice", "bob", "impostor"]
    assert claims[0]["preferred_username"] == "alice"
    # The impostor is another identity (sub) whose changeable name claim says alice: pinning refuses it.
    assert claims[-1]["preferred_username"] == "alice"


def test_demo_extra_users_for_load_tests_are_validated():
    assert demo_idp.demo_users("u01, u02") == {"alice": True, "bob": False, "u01": False, "u02": False}
    assert "brace{0}" in demo_idp.demo_users("brace{0}")  # hard names, for the tests that spawn them
    assert load({"DEMO_EXTRA_USERS": "u01"}).demo_users == {"alice": True, "bob": False, "u01": False}
    for bad in ("Bad Name", "Upper", "-dash", "x" * 41, "tab\there"):
        with pytest.raises(ValueError, match="DEMO_EXTRA_USERS"):
            demo_idp.demo_users(bad)
        with pytest.raises(SettingsError, match="DEMO_EXTRA_USERS: .* is invalid"):  # the hub refuses to start
            load({"DEMO_EXTRA_USERS": bad})
