"""devhub.names: injective, Docker-valid names from hostile usernames."""

import itertools
import re

import pytest

from devhub import names

DOCKER = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
HOSTILE = [
    "alice", "Alice", "ALICE", "a-b", "a_b", "a.b", "a b", "a-2db", "-bob", "--", ".", "..", "_",
    "émile", "e\u0301mile", "用户", "👩‍💻", "a/b", "a:b", "a@b.c", "x" * 200, "x" * 199 + "y",
    "X" * 200, "-" * 200, "a" * 40, "a" * 41, "0", "a--b", "a-2d-2db",
]


def test_escape_examples():
    assert names.escape("alice") == "alice"
    assert names.escape("a-b") == "a-2db"
    assert names.escape("a_b") == "a-5fb"
    assert names.escape("a.b") == "a-2eb"
    assert names.escape("Alice") == "-41lice"
    assert names.escape("é") == "-c3-a9"


@pytest.mark.parametrize("username", HOSTILE)
def test_escape_round_trips(username):
    assert names.unescape(names.escape(username)) == username
    assert set(names.escape(username)) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


@pytest.mark.parametrize("username", HOSTILE)
def test_names_are_valid_docker_names(username):
    for name in (
        names.ServerObjects(user=username).container,
        names.ServerObjects(user=username, volume_prefix="devhub-home-").home,
        names.ServerObjects(user=username, network_prefix="devhub-user-").network,
        names.ServerObjects(user=username).archive("20260101T000000Z"),
    ):
        assert DOCKER.fullmatch(name), name
        assert len(name) <= 63, name
        assert not name.startswith("-")


def test_injective_over_hostile_names():
    for make in (
        lambda u: names.ServerObjects(user=u).container,
        lambda u: names.ServerObjects(user=u, volume_prefix="devhub-home-").home,
        lambda u: names.ServerObjects(user=u).archive("20260101T000000Z"),
    ):
        made = [make(u) for u in HOSTILE]
        assert len(set(made)) == len(HOSTILE)


def test_naive_collisions_are_distinct():
    for a, b in itertools.combinations(["a-b", "a_b", "a.b", "a b", "ab", "a-2db", "Alice", "alice"], 2):
        assert names.ServerObjects(user=a).container != names.ServerObjects(user=b).container


def test_long_names_are_truncated_with_hash():
    long1, long2 = "x" * 200, "x" * 199 + "y"
    n1, n2 = names.ServerObjects(user=long1).container, names.ServerObjects(user=long2).container
    assert n1 != n2
    assert n1.startswith("devhub-user-xxx") and re.search(r"--[0-9a-f]{16}$", n1)
    # A truncated name can never equal an untruncated one: "--" does not occur in escapes.
    assert "--" not in names.escape("anything-at_all.ok")
    assert names.ServerObjects(user=long1).container == n1  # stable


def test_short_names_are_plain():
    assert names.ServerObjects(user="alice").container == "devhub-user-alice"
    assert names.ServerObjects(user="alice", volume_prefix="devhub-home-").home == "devhub-home-alice"
    assert names.ServerObjects(user="alice").archive("20260101T000000Z") == "devhub-archive-alice-20260101T000000Z"


SERVERS = ["", "exp1", "gpu", "s", "a-b", "x" * 32, "0"]


def test_named_servers_names_are_injective_and_valid():
    pairs = [(user, server) for user in HOSTILE for server in SERVERS]
    for make in (lambda u, s: names.ServerObjects(user=u, server=s).container,
                 lambda u, s: names.ServerObjects(user=u, server=s, network_prefix="devhub-user-").network):
        made = [make(u, s) for u, s in pairs]
        assert len(set(made)) == len(pairs)
        assert all(DOCKER.fullmatch(n) and len(n) <= 63 for n in made)
    # The default server keeps the user's plain names (existing containers and networks are found).
    assert names.ServerObjects(user="alice", server="").container == "devhub-user-alice"
    assert names.ServerObjects(user="alice", server="exp1").container == "devhub-user-alice-s-exp1"
    assert names.ServerObjects(user="alice", server="exp1").home == "devhub-home-alice"  # one home per person
    assert names.ServerObjects(user="a-s").network != names.ServerObjects(user="a", server="s").network
    assert names.server_key("alice") == "alice" and names.server_key("alice", "exp1") == "alice/exp1"


@pytest.mark.parametrize("server", ["Exp1", "-x", "x" * 33, "a_b", "a b", "a+b", "a/b", "é"])
def test_invalid_server_names_are_refused(server):
    with pytest.raises(names.InvalidServerName, match="use 1-32 characters of a-z, 0-9 and '-'"):
        names.ServerObjects(user="alice", server=server).container


def test_the_cli_prints_names_for_shell_scripts(capsys):
    names.main(["container", "--user", "a.b", "--server", "exp1", "--network-prefix", "devhubtest-user-"])
    names.main(["home", "--user", "a.b"])
    assert capsys.readouterr().out.splitlines() == ["devhubtest-user-a-2eb-s-exp1", "devhub-home-a-2eb"]
    with pytest.raises(SystemExit) as bad:
        names.main(["container", "--user", "alice", "--server", "Bad"])
    assert bad.value.code == 2 and "invalid server name 'Bad'" in capsys.readouterr().err


def test_the_gateway_reads_server_names_by_the_same_rule():
    """The gateway (its own image, no devhub package) checks SSH logins' server names before asking
    the hub: both sides must hold the same rule, and the same separator."""
    from devhub_gateway import target

    assert target.SERVER_NAME.pattern == names.SERVER_NAME.pattern
    assert target.SERVER_NAME_RULE == names.SERVER_NAME_RULE
    assert target.SEPARATOR == names.SSH_SERVER_SEPARATOR
