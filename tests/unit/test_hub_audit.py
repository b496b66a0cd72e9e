"""devhub.audit: what a finished hub request stands for in the audit log, and the line format."""

import json

import pytest

from devhub import audit


@pytest.mark.parametrize("method, path, status, actor, expected", [
    ("GET", "/hub/logout", 302, "alice", ("logout", {"user": "alice"})),
    ("GET", "/hub/oauth_callback?code=x", 403, "", ("login_refused", {"status": 403})),
    ("POST", "/hub/api/users/alice/tokens", 201, "alice", ("token_create", {"user": "alice", "by": "alice"})),
    ("DELETE", "/hub/api/users/bob/server", 204, "jupyterhub-idle-culler",
     ("cull", {"user": "bob", "by": "jupyterhub-idle-culler", "reason": "idle (IDLE_CULL_TIMEOUT)"})),
    ("DELETE", "/hub/api/users/b%7B0%7D", 204, "alice",
     ("admin", {"user": "b{0}", "by": "alice", "action": "DELETE /hub/api/users/b%7B0%7D", "status": 204})),
    ("POST", "/hub/api/groups/ml/users", 200, "alice",
     ("admin", {"user": None, "by": "alice", "action": "POST /hub/api/groups/ml/users", "status": 200})),
    # Not audited: reads, one's own server, the gateway's starts (the spawner reports those), failures.
    ("GET", "/hub/api/users/bob", 200, "alice", None),
    ("POST", "/hub/api/users/alice/server", 202, "alice", None),
    ("POST", "/hub/api/users/alice/server", 202, "ssh-gateway", None),
    ("DELETE", "/hub/api/users/bob", 403, "alice", None),
])
def test_request_events(method, path, status, actor, expected):
    assert audit.request_event(method, path.split("?")[0] if "oauth" not in path else path, status, actor) == expected


def test_one_json_object_per_line_in_the_gateways_schema(capsys):
    line = audit.record("key_add", user="alice", by="alice", key="SHA256:x", source=None)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == line
    assert list(line)[:2] == ["ts", "event"] and line["ts"].endswith("Z") and "source" not in line
