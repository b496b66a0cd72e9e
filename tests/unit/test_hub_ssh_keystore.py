"""devhub.ssh_keystore: users' SSH keys in a SQLite file (validation, limits, persistence, mode 600)."""

import os
import sqlite3
import subprocess
from datetime import datetime
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from devhub.ssh_keys import InvalidKey
from devhub.ssh_keystore import FILE_NAME, KeyStore, owner_of, store_for


def ssh_line(private_key, comment="me@laptop"):
    data = private_key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{data.decode()} {comment}".strip()


def ed():
    return ssh_line(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture
def store(tmp_path):
    s = KeyStore(tmp_path / "data" / FILE_NAME, max_keys=3)
    yield s
    s.close()


def test_add_list_delete(store):
    line = ed()
    entry = store.add("o1", "alice", " laptop ", "  " + line + "\n")
    assert entry.name == "laptop"
    assert entry.key == line
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=line, capture_output=True, text=True, check=True)
    assert entry.fingerprint == fingerprint.stdout.split()[1]
    datetime.strptime(entry.created, "%Y-%m-%dT%H:%M:%SZ")
    assert store.list("o1") == [entry]
    assert entry.to_json() == {"id": entry.id, "name": "laptop", "key": line, "fingerprint": entry.fingerprint,
                               "created": entry.created}
    assert store.list("o2") == []
    assert store.delete("o2", entry.id) is False  # not bob's key
    assert store.delete("o1", "not-a-number") is False
    assert store.delete("o1", entry.id) is True
    assert store.list("o1") == []
    assert store.delete("o1", entry.id) is False


def test_stores_reserialised_key_never_raw_text(store):
    private = ec.generate_private_key(ec.SECP384R1())
    bare = ssh_line(private, comment="")
    entry = store.add("o1", "alice", "work", "\t" + bare + "   me@laptop   ")
    assert entry.key == bare + " me@laptop"
    rows = sqlite3.connect(store.path).execute("SELECT key FROM ssh_keys").fetchall()
    assert rows == [(entry.key,)]


@pytest.mark.parametrize(
    "key,reason",
    [
        ("", "empty key"),
        (None, "must be text"),
        (42, "must be text"),
        ('command="sh" ' + "KEY", "options before the key"),
        ("restrict KEY", "options before the key"),
        ("KEY\nKEY2", "line breaks"),
        ("KEY KEY2", "second key"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "DSA keys are insecure"),
        ("ssh-ed25519 !!!notbase64", "not base64"),
        ("ssh-rsa BLOB", "not a ssh-rsa key"),
        ("hello world", "unsupported key type"),
    ],
)
def test_refuses_bad_keys_with_reason(store, key, reason):
    first, second = ed(), ed()
    if isinstance(key, str):
        key = key.replace("KEY2", second).replace("KEY", first).replace("BLOB", first.split()[1])
    with pytest.raises(InvalidKey, match=reason):
        store.add("o1", "alice", "k", key)
    assert store.list("o1") == []


def test_refuses_weak_rsa(store):
    weak = ssh_line(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(InvalidKey, match="at least 3072 bits"):
        store.add("o1", "alice", "old", weak)
    strong = ssh_line(rsa.generate_private_key(public_exponent=65537, key_size=3072))
    assert store.add("o1", "alice", "rsa", strong).key == strong


@pytest.mark.parametrize(
    "name,reason",
    [("", "empty"), ("   ", "empty"), ("x" * 65, "too long"), ("a\tb", "printable"), ("a\x00b", "printable"),
     ("line\nbreak", "printable"), (None, "must be text"), (["x"], "must be text")],
)
def test_refuses_bad_names(store, name, reason):
    with pytest.raises(InvalidKey, match=reason):
        store.add("o1", "alice", name, ed())


def test_names_up_to_64_printable_characters(store):
    assert store.add("o1", "alice", "ü" * 64, ed()).name == "ü" * 64
    assert store.add("o1", "alice", "Laptop (work) #2", ed()).name == "Laptop (work) #2"


def test_duplicates_refused_per_owner_only(store):
    line = ed()
    store.add("o1", "alice", "laptop", line)
    with pytest.raises(InvalidKey, match="already added \\(as 'laptop'"):
        store.add("o1", "alice", "again", line.rsplit(" ", 1)[0] + " other-comment")
    with pytest.raises(InvalidKey, match="a key named 'laptop' already exists"):
        store.add("o1", "alice", "laptop", ed())
    # Another user may register the same key and the same name.
    assert store.add("o2", "bob", "laptop", line).key == line
    assert [e.name for e in store.list("o1")] == ["laptop"]


def test_limit_per_user(store):
    for i in range(3):
        store.add("o1", "alice", f"k{i}", ed())
    with pytest.raises(InvalidKey, match="at most 3 keys per user"):
        store.add("o1", "alice", "k3", ed())
    store.add("o2", "bob", "k0", ed())  # per user
    first = store.list("o1")[0]
    store.delete("o1", first.id)
    store.add("o1", "alice", "k3", ed())
    assert [e.name for e in store.list("o1")] == ["k1", "k2", "k3"]


def test_persists_across_reopen_with_mode_600(tmp_path):
    path = tmp_path / "data" / FILE_NAME
    old_umask = os.umask(0o022)
    try:
        first = KeyStore(path, max_keys=10)
        entry = first.add("o1", "alice", "laptop", ed())
        first.close()
    finally:
        os.umask(old_umask)
    assert os.stat(path).st_mode & 0o777 == 0o600
    for extra in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + extra)
        if sidecar.exists():
            assert sidecar.stat().st_mode & 0o077 == 0
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    again = KeyStore(path, max_keys=10)
    assert again.list("o1") == [entry]
    again.close()


def test_existing_file_with_loose_mode_is_tightened(tmp_path):
    path = tmp_path / FILE_NAME
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    s = KeyStore(path)
    assert s.list("x") == []
    assert os.stat(path).st_mode & 0o777 == 0o600
    s.close()


def test_delete_user_removes_owner_and_name(store):
    store.add("1:2026-01-01T00:00:00", "alice", "a", ed())
    store.add("1:2026-01-01T00:00:00", "alice", "b", ed())
    store.add("7:2025-01-01T00:00:00", "alice", "stale", ed())  # an earlier account named alice
    store.add("2:2026-01-01T00:00:00", "bob", "b", ed())
    assert store.delete_user("1:2026-01-01T00:00:00", "alice") == 3
    assert store.list("1:2026-01-01T00:00:00") == [] and store.list("7:2025-01-01T00:00:00") == []
    assert len(store.list("2:2026-01-01T00:00:00")) == 1


def test_owner_distinguishes_recreated_users():
    first = SimpleNamespace(id=5, created=datetime(2026, 1, 1, 12, 0, 0), name="alice")
    again = SimpleNamespace(id=5, created=datetime(2026, 3, 1, 9, 0, 0), name="alice")
    wrapper = SimpleNamespace(orm_user=first, name="alice")
    assert owner_of(first) == owner_of(wrapper) == "5:2026-01-01T12:00:00"
    assert owner_of(again) != owner_of(first)


def test_store_for_is_shared_per_file(tmp_path):
    assert store_for(tmp_path, 10) is store_for(tmp_path, 10)
    assert store_for(tmp_path, 10).path == tmp_path / FILE_NAME
