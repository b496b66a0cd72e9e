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
        names.container_name(username),
        names.volume_name("devhub-home-", username),
        names.network_name("devhub-user-", username),
        names.archive_volume_name(username, "20260101T000000Z"),
    ):
        assert DOCKER.fullmatch(name), name
        assert len(name) <= 63, name
        assert not name.startswith("-")


def test_injective_over_hostile_names():
    for make in (
        names.container_name,
        lambda u: names.volume_name("devhub-home-", u),
        lambda u: names.archive_volume_name(u, "20260101T000000Z"),
    ):
        made = [make(u) for u in HOSTILE]
        assert len(set(made)) == len(HOSTILE)


def test_naive_collisions_are_distinct():
    for a, b in itertools.combinations(["a-b", "a_b", "a.b", "a b", "ab", "a-2db", "Alice", "alice"], 2):
        assert names.container_name(a) != names.container_name(b)


def test_long_names_are_truncated_with_hash():
    long1, long2 = "x" * 200, "x" * 199 + "y"
    n1, n2 = names.container_name(long1), names.container_name(long2)
    assert n1 != n2
    assert n1.startswith("devhub-user-xxx") and re.search(r"--[0-9a-f]{16}$", n1)
    # A truncated name can never equal an untruncated one: "--" does not occur in escapes.
    assert "--" not in names.escape("anything-at_all.ok")
    assert names.container_name(long1) == n1  # stable


def test_short_names_are_plain():
    assert names.container_name("alice") == "devhub-user-alice"
    assert names.volume_name("devhub-home-", "alice") == "devhub-home-alice"
    assert names.archive_volume_name("alice", "20260101T000000Z") == "devhub-archive-alice-20260101T000000Z"
