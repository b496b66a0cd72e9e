"""The hub's audit log (devhub.audit): alice's login, key add, spawn and stop, one JSON object per
line on the hub's stdout, in the SSH gateway's schema."""

from __future__ import annotations

from stack_support import audit_lines, hub_api, start_server, stop_server
from support import make_keypair


def test_alices_login_key_spawn_and_stop_are_audited(stack, alice_token, tmp_path):
    if hub_api(stack, alice_token, "GET", "/users/alice").json()["servers"].get(""):
        stop_server(stack, alice_token, "alice")
    stack.login("alice")  # the demo login starts her server, or start_server below does
    key = make_keypair(tmp_path, name="alice-audit")
    added = hub_api(stack, alice_token, "POST", "/devhub/ssh/users/alice/keys", json={"name": "audit", "key": key.public_line})
    assert added.status_code == 201
    start_server(stack, alice_token, "alice")
    stop_server(stack, alice_token, "alice")
    hub_api(stack, alice_token, "DELETE", f"/devhub/ssh/users/alice/keys/{added.json()['id']}")

    mine = [e for e in audit_lines(stack) if e.get("user") == "alice"]
    last_login = max(i for i, e in enumerate(mine) if e["event"] == "login")
    events = [e["event"] for e in mine[last_login:]]
    assert events[:1] == ["login"] and mine[last_login]["source"]
    for event in ("key_add", "spawn", "stop", "key_delete"):
        assert event in events, events
    assert events.index("spawn") < events.index("stop") and events.index("key_add") < events.index("key_delete")
    key_add = mine[last_login + events.index("key_add")]
    assert key_add["key"] == added.json()["fingerprint"] and key_add["by"] == "alice" and key_add["ts"].endswith("Z")
    spawn = mine[last_login + events.index("spawn")]
    assert spawn["container"] == "devhubtest-user-alice" and spawn["image"]
