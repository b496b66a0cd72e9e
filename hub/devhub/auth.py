"""Which authenticator the hub uses, and how it is configured, from the settings.

github  GitHubOAuthenticator: ALLOWED_USERS, ALLOWED_ORGS (org or org:team), ADMIN_USERS
gitlab  GitLabOAuthenticator at GITLAB_URL: ALLOWED_USERS, ALLOWED_ORGS (GitLab groups), ADMIN_USERS
oidc    GenericOAuthenticator: OIDC_* URLs and claims; ALLOWED_USERS/GROUPS, ADMIN_USERS/GROUPS
demo    GenericOAuthenticator against the bundled mock IdP (devhub.demo_idp); its users only, with a
        warning on every page and in the log.

Default deny: nothing here sets allow_all or allow_existing_users, so a real provider with no
ALLOWED_* list lets nobody in (admins excepted). The demo is only ever configured when
AUTH_PROVIDER=demo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tornado import web

from . import audit, deletion, identity, names, recent_login
from .settings import Settings

DEMO_BANNER = (
    "<strong>DEMO identity provider: not for production.</strong> "
    "Anyone who can reach this page can sign in as a demo user. "
    "Set AUTH_PROVIDER to github, gitlab or oidc."
)
DEMO_LOGIN_SERVICE = "DEMO identity provider (not for production)"
DEMO_CLIENT_ID = "devhub-demo"
# The mock IdP accepts any secret from any client; this is not a secret.
DEMO_CLIENT_SECRET = "devhub-demo-not-a-secret"


def authenticator(settings: Settings) -> tuple[type, dict[str, Any]]:
    """(authenticator class, {trait: value}) for the configured provider."""
    common: dict[str, Any] = {
        "oauth_callback_url": settings.public_url + "/hub/oauth_callback",
        "enable_auth_state": True,
        "client_id": settings.oauth_client_id,
        "client_secret": settings.oauth_client_secret,
        "allowed_users": set(settings.allowed_users),
        "admin_users": set(settings.admin_users),
    }
    provider = settings.auth_provider
    if provider == "github":
        from oauthenticator.github import GitHubOAuthenticator

        traits = {**common, "allowed_organizations": set(settings.allowed_orgs)}
        if settings.allowed_orgs:
            # Private org/team membership is only visible with read:org.
            traits["scope"] = ["read:org"]
        return GitHubOAuthenticator, traits
    if provider == "gitlab":
        from oauthenticator.gitlab import GitLabOAuthenticator

        return GitLabOAuthenticator, {
            **common,
            "gitlab_url": settings.gitlab_url,
            "allowed_gitlab_groups": set(settings.allowed_orgs),
        }
    from oauthenticator.generic import GenericOAuthenticator

    if provider == "oidc":
        traits = {
            **common,
            "login_service": "single sign-on",
            "authorize_url": settings.oidc_authorize_url,
            "token_url": settings.oidc_token_url,
            "userdata_url": settings.oidc_userdata_url,
            "username_claim": settings.oidc_username_claim,
            "scope": ["openid", "profile", "email"],
            "allowed_groups": set(settings.allowed_groups),
            "admin_groups": set(settings.admin_groups),
        }
        if settings.allowed_groups or settings.admin_groups:
            traits["manage_groups"] = True
            traits["auth_state_groups_key"] = f"oauth_user.{settings.oidc_groups_claim}"
        return GenericOAuthenticator, traits
    if provider == "demo":
        return GenericOAuthenticator, {
            **common,
            "login_service": DEMO_LOGIN_SERVICE,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            # The browser goes to the public URL (through nginx); the hub talks to the IdP directly.
            "authorize_url": settings.demo_oidc_public_url + "/oauth2/authorize",
            "token_url": settings.demo_oidc_url + "/oauth2/token",
            "userdata_url": settings.demo_oidc_url + "/userinfo",
            # As with real OIDC providers: the name is a changeable claim, the pinned subject is `sub`.
            "username_claim": "preferred_username",
            "scope": ["openid", "profile"],
            "allowed_users": set(settings.demo_users),
            "admin_users": {name for name, admin in settings.demo_users.items() if admin},
        }
    raise ValueError(f"unknown AUTH_PROVIDER {provider!r}")


def _post_auth(pin, mark_login: bool):
    """After a login the provider vouched for: the identity pin (may refuse), the login time for
    path routing's recent-login checks, the audit line."""

    def post_auth_hook(authenticator, handler, auth_model):
        refuse_unusable_name(auth_model["name"])
        auth_model = pin(authenticator, handler, auth_model)
        if mark_login:
            recent_login.mark_login(handler)
        audit.record("login", user=auth_model["name"], source=handler.request.remote_ip)
        return auth_model

    return post_auth_hook


def refuse_unusable_name(name: str) -> None:
    """'+' separates a user from a server name in SSH logins (alice+exp1, devhub_gateway.target): a
    user name holding it could not be told apart, so such a login is refused, saying why."""
    if names.SSH_SERVER_SEPARATOR in name:
        raise web.HTTPError(403, f"The user name {name!r} cannot be used on devhub: it contains "
                                 f"{names.SSH_SERVER_SEPARATOR!r}, which SSH logins use to name a server "
                                 "(alice+exp1). Ask your administrator to map your account to another name.")


def nobody_allowed(settings: Settings) -> bool:
    """True when a real provider is configured without any allow list: only admins can sign in."""
    return not settings.is_demo and not (settings.allowed_users or settings.allowed_orgs or settings.allowed_groups)


def apply(c, settings: Settings, log) -> type:
    """Set the authenticator class and its traits on the config object `c`."""
    cls, traits = authenticator(settings)
    # Deleting a user also stops their named servers and deletes their SSH keys (devhub.deletion).
    c.JupyterHub.authenticator_class = deletion.with_user_deletion(cls)
    section = c[cls.__name__]
    for name, value in traits.items():
        section[name] = value
    # A login under a known name with another identity at the provider is refused (identity.py);
    # with path routing, logins are also timed for the actions that need a recent one (recent_login.py).
    pins = identity.Pins(Path(settings.data_dir) / identity.FILE_NAME)
    section["post_auth_hook"] = _post_auth(identity.pinning_hook(settings.auth_provider, pins),
                                           mark_login=not settings.subdomains)
    if settings.is_demo:
        log.warning(
            "AUTH_PROVIDER=demo: the DEMO identity provider is in use, NOT FOR PRODUCTION; "
            "users: %s (sign-in at %s)",
            ", ".join(sorted(settings.demo_users)),
            settings.demo_oidc_public_url,
        )
    elif nobody_allowed(settings):
        log.warning(
            "AUTH_PROVIDER=%s with none of ALLOWED_USERS/ALLOWED_ORGS/ALLOWED_GROUPS set: nobody but "
            "ADMIN_USERS%s can sign in (default deny)",
            settings.auth_provider,
            "/ADMIN_GROUPS" if settings.auth_provider == "oidc" else "",
        )
    return c.JupyterHub.authenticator_class
