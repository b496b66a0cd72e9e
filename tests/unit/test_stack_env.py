"""scripts/stack-env.sh's user_extra_ca: which CA file `make up` gives users' servers (USER_EXTRA_CA)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devhub.settings import MAX_EXTRA_CA_BYTES

STACK_ENV = Path(__file__).resolve().parents[2] / "scripts" / "stack-env.sh"
PEM_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"  # no newline at its end
PEM_B = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"


def run_user_extra_ca(checkout: Path, local_cas: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """user_extra_ca, run in `checkout` (where .env would be) as up.sh runs it."""
    return subprocess.run(["bash", "-c", f'. "{STACK_ENV}" && user_extra_ca'], cwd=checkout, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "HOST_LOCAL_CAS": str(local_cas), **(env or {})},
                          timeout=30)


def user_extra_ca(checkout: Path, local_cas: Path, env: dict | None = None) -> str:
    """What user_extra_ca prints (it succeeded)."""
    result = run_user_extra_ca(checkout, local_cas, env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_unset_gives_the_cas_this_host_added_in_one_file(tmp_path):
    local = tmp_path / "local"
    (local / "corp").mkdir(parents=True)
    (local / "b-proxy.crt").write_text(PEM_B)
    (local / "corp" / "a-root.crt").write_text(PEM_A)
    (local / "README").write_text("not a certificate")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    path = Path(user_extra_ca(checkout, local))
    assert path.parent == checkout and path.name.startswith(".host-cas-") and path.suffix == ".pem"
    # In file-name order, each certificate's last line ended, nothing else.
    assert path.read_text() == PEM_B + PEM_A + "\n"
    assert path.stat().st_mode & 0o777 == 0o644  # the hub reads it as its own user
    # The same CAs: the same file. Another CA: another path (compose then recreates the hub, which
    # reads it at its start), and the old file is gone.
    assert Path(user_extra_ca(checkout, local)) == path
    (local / "c-new.crt").symlink_to(local / "b-proxy.crt")  # update-ca-certificates follows links
    changed = Path(user_extra_ca(checkout, local))
    assert changed != path and changed.read_text() == PEM_B + PEM_B + PEM_A + "\n"
    assert sorted(p.name for p in checkout.iterdir()) == [changed.name]


def test_a_host_that_added_none_gives_none_and_leaves_no_file(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / "proxy.crt").write_text(PEM_B)
    assert user_extra_ca(tmp_path, local)
    (local / "proxy.crt").unlink()  # the host no longer adds one: neither does make up
    assert user_extra_ca(tmp_path, local) == ""
    assert user_extra_ca(tmp_path, tmp_path / "absent") == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local"]


def test_the_operators_choice_wins(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / "proxy.crt").write_text(PEM_B)
    (tmp_path / ".env").write_text("USER_EXTRA_CA=/etc/devhub/corporate-ca.pem\n")
    assert user_extra_ca(tmp_path, local) == "/etc/devhub/corporate-ca.pem"
    (tmp_path / ".env").write_text("USER_EXTRA_CA=none\n")
    assert user_extra_ca(tmp_path, local) == "/dev/null"  # compose mounts an empty file: no extra CA
    assert user_extra_ca(tmp_path, local, {"USER_EXTRA_CA": "/srv/ca.pem"}) == "/srv/ca.pem"
    assert not list(tmp_path.glob(".host-cas*"))


def test_more_cas_than_a_server_can_be_given_is_a_clear_error(tmp_path):
    """The hub passes the CAs in each server's environment (MAX_EXTRA_CA_BYTES); make up stops
    before starting anything, saying what to set, rather than leave a hub that refuses to start."""
    local = tmp_path / "local"
    local.mkdir()
    pem = PEM_B.replace("BBBB", "\n".join(["B" * 64] * 30))  # the size of a real 4096-bit RSA CA
    count = MAX_EXTRA_CA_BYTES // len(pem) + 1
    for i in range(count):
        (local / f"ca-{i:04d}.crt").write_text(pem)
    result = run_user_extra_ca(tmp_path, local)
    assert result.returncode == 2 and result.stdout == ""
    assert (f"this host's own CAs in {local} are {count * len(pem)} bytes, more than users' servers can be "
            f"given ({MAX_EXTRA_CA_BYTES}): set USER_EXTRA_CA in .env") in " ".join(result.stderr.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local"]
    (local / "ca-0000.crt").unlink()  # one fewer fits
    assert user_extra_ca(tmp_path, local)
