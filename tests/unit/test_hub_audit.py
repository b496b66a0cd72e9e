"""devhub.audit: what a finished hub request stands for in the audit log, and the line format."""

import json

import pytest

from devhub import audit, stops

# As imported, before any test configures a hub (devhub.config adds the configured timeouts to them).
CULL_REASONS_AS_SHIPPED = dict(audit.CULL_REASONS)


@pytest.fixture(autouse=True)
def shipped_cull_reasons(monkeypatch):
    monkeypatch.setattr(audit, "CULL_REASONS", dict(CULL_REASONS_AS_SHIPPED))


@pytest.mark.parametrize("method, path, status, actor, expected", [
    ("GET", "/hub/logout", 302, "alice", ("logout", {"user": "alice"})),
    ("GET", "/hub/oauth_callback?code=x", 403, "", ("login_refused", {"status": 403})),
    ("POST", "/hub/api/users/alice/tokens", 201, "alice", ("token_create", {"user": "alice", "by": "alice"})),
    ("DELETE", "/hub/api/users/bob/server", 204, "jupyterhub-idle-culler",
     ("cull", {"user": "bob", "by": "jupyterhub-idle-culler", "reason": "idle (IDLE_CULL_TIMEOUT)"})),
    ("DELETE", "/hub/api/users/bob/servers/gpu", 204, "jupyterhub-idle-culler",
     ("cull", {"user": "bob", "server": "gpu", "by": "jupyterhub-idle-culler", "reason": "idle (IDLE_CULL_TIMEOUT)"})),
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


@pytest.mark.parametrize("method, path, status, expected", [
    ("DELETE", "/hub/api/users/b%7B0%7D/server", 204, ("b{0}", "")),
    ("DELETE", "/hub/api/users/bob/server/", 202, ("bob", "")),
    ("DELETE", "/hub/api/users/bob/servers/exp1", 204, ("bob", "exp1")),
    ("DELETE", "/hub/api/users/bob/servers/exp1/", 202, ("bob", "exp1")),
    ("DELETE", "/hub/api/users/bob/server", 403, None),   # refused: nothing stopped
    ("DELETE", "/hub/api/users/bob", 204, None),          # the user, not a server stop
    ("DELETE", "/hub/api/users/bob/servers/exp1/progress", 204, None),
    ("POST", "/hub/api/users/bob/server", 202, None),
])
def test_stopped_server(method, path, status, expected):
    assert audit.stopped_server(method, path, status) == expected


def test_stop_reasons_for_the_gateway_notice():
    reasons = {"jupyterhub-idle-culler": "idle for more than 1 h (IDLE_CULL_TIMEOUT)"}
    assert stops.reason_for("jupyterhub-idle-culler", "bob", reasons) == "idle for more than 1 h (IDLE_CULL_TIMEOUT)"
    assert stops.reason_for("bob", "bob", reasons) == "stopped by you (from the hub)"
    assert stops.reason_for("admin1", "bob", reasons) == "stopped by admin1"
    log = stops.StopLog()
    log.record("bob", "stopped by admin1", "admin1")
    assert log.last("bob")["reason"] == "stopped by admin1" and log.last("bob")["at"].endswith("Z")
    log.forget("bob")
    assert log.last("bob") is None


def test_one_json_object_per_line_in_the_gateways_schema(capsys):
    line = audit.record("key_add", user="alice", by="alice", key="SHA256:x", source=None)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == line
    assert list(line)[:2] == ["ts", "event"] and line["ts"].endswith("Z") and "source" not in line
