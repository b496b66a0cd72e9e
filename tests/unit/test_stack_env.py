"""scripts/stack-env.sh's user_extra_ca: which CA file `make up` gives users' servers (USER_EXTRA_CA)."""

from __future__ import annotations

import subprocess
from pathlib import Path

STACK_ENV = Path(__file__).resolve().parents[2] / "scripts" / "stack-env.sh"
PEM_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"  # no newline at its end
PEM_B = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"


def user_extra_ca(checkout: Path, local_cas: Path, env: dict | None = None) -> str:
    """What user_extra_ca prints, run in `checkout` (where .env would be) as up.sh runs it."""
    result = subprocess.run(["bash", "-c", f'. "{STACK_ENV}" && user_extra_ca'], cwd=checkout, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "HOST_LOCAL_CAS": str(local_cas), **(env or {})},
                            timeout=30)
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
    assert path == checkout / ".host-cas.pem"
    # In file-name order, each certificate's last line ended, nothing else.
    assert path.read_text() == PEM_B + PEM_A + "\n"
    assert path.stat().st_mode & 0o777 == 0o644  # the hub reads it as its own user


def test_a_host_that_added_none_gives_none_and_leaves_no_file(tmp_path):
    (tmp_path / "local").mkdir()
    stale = tmp_path / ".host-cas.pem"
    stale.write_text(PEM_A)  # from a make up when the host still had one
    assert user_extra_ca(tmp_path, tmp_path / "local") == ""
    assert not stale.exists()
    assert user_extra_ca(tmp_path, tmp_path / "absent") == ""


def test_the_operators_choice_wins(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / "proxy.crt").write_text(PEM_B)
    (tmp_path / ".env").write_text("USER_EXTRA_CA=/etc/devhub/corporate-ca.pem\n")
    assert user_extra_ca(tmp_path, local) == "/etc/devhub/corporate-ca.pem"
    (tmp_path / ".env").write_text("USER_EXTRA_CA=none\n")
    assert user_extra_ca(tmp_path, local) == "/dev/null"  # compose mounts an empty file: no extra CA
    assert user_extra_ca(tmp_path, local, {"USER_EXTRA_CA": "/srv/ca.pem"}) == "/srv/ca.pem"
    assert not (tmp_path / ".host-cas.pem").exists()
