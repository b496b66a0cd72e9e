"""The demo identity provider: oidc-provider-mock with devhub's demo users. NOT FOR PRODUCTION.

Run from the hub image as the `oidc` service:  python -m devhub.demo_idp  (listens on 0.0.0.0:8080;
DEMO_IDP_PORT changes the port). Browsers reach it through nginx at PUBLIC_URL/demo-idp/ (nginx
strips the prefix; the IdP's forms post back to their own URL, so the prefix needs no support
here); the hub calls it directly at DEMO_OIDC_URL (http://oidc:8080).

The mock signs in whoever clicks a user name (no password), and accepts any client id/secret:
the hub only admits the users below (auth.py), everybody else typed into the form is refused.
"impostor" shows identity pinning (identity.py): a different identity whose changeable name claim
says "alice"; the hub refuses it.
"""

from __future__ import annotations

import json
import os
import re
import sys


def demo_users(extra: str = "") -> dict[str, bool]:
    """username -> is admin: alice (admin), bob, and DEMO_EXTRA_USERS (comma-separated, for load tests
    and for names that are hard on the code that handles them, such as `x{0}`); ValueError says
    what is wrong with one (the hub reads it as a setting, devhub.settings)."""
    users = {"alice": True, "bob": False}
    for name in filter(None, (n.strip() for n in extra.split(","))):
        if not re.fullmatch(r"[a-z0-9][^\sA-Z,]{0,39}", name) or not name.isprintable():
            raise ValueError(f"DEMO_EXTRA_USERS: {name!r} is invalid: expected 1-40 printable characters, "
                             "no upper case, spaces or commas, starting with a lower-case letter or digit")
        users.setdefault(name, False)
    return users


IMPOSTOR = {"sub": "impostor", "preferred_username": "alice", "name": "Impostor (renamed to alice)"}


def argv(users: dict[str, bool], port: int = 8080) -> list[str]:
    args = ["--host", "0.0.0.0", "--port", str(port)]
    for name in users:
        args += ["--user-claims", json.dumps({"sub": name, "preferred_username": name, "name": name.title()})]
    return args + ["--user-claims", json.dumps(IMPOSTOR)]


def main() -> None:
    from oidc_provider_mock.__main__ import run

    import devhub_env

    from . import settings  # imports this module: not at the top

    try:
        own = devhub_env.read_only(settings.TABLE, ("DEMO_EXTRA_USERS", "DEMO_IDP_PORT"), os.environ)
        users = demo_users(own["demo_extra_users"])
    except ValueError as exc:  # devhub_env.SettingError is one
        raise SystemExit(f"devhub: {exc}") from None
    port = own["demo_idp_port"]
    print(
        "WARNING: DEMO identity provider (oidc-provider-mock), not for production; users: "
        + ", ".join(f"{n}{' (admin)' if a else ''}" for n, a in users.items()),
        file=sys.stderr,
        flush=True,
    )
    run.main(args=argv(users, port), prog_name="devhub.demo_idp")


if __name__ == "__main__":
    main()
