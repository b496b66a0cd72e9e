"""The SSH algorithms the gateway offers and accepts (ssh-audit clean), and user keys as the blobs
authentication compares."""

from __future__ import annotations

import logging
from typing import Callable

import asyncssh
from asyncssh.packet import PacketDecodeError, SSHPacket

log = logging.getLogger("devhub_gateway.algorithms")

# ssh-audit clean: no SHA-1, no CBC, no NIST curves or ECDSA host keys, no compression. Post-quantum
# hybrids first where this asyncssh build has them (they need liboqs).
KEX_PREFERRED = ["mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com",
                 "curve25519-sha256", "curve25519-sha256@libssh.org"]
CIPHERS = ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
           "aes256-ctr", "aes192-ctr", "aes128-ctr"]
MACS = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com"]
# Signatures accepted from users' keys (the hub accepts ed25519, ECDSA and RSA >= 3072); never ssh-rsa (SHA-1).
USER_SIG_ALGS = ["ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                 "ecdsa-sha2-nistp521", "sk-ecdsa-sha2-nistp256@openssh.com", "rsa-sha2-512", "rsa-sha2-256"]
# Upstream (gateway -> container, loopback or a private network): fastest AEAD first.
UPSTREAM_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]


def _supported(wanted: list[str], available: list[bytes]) -> list[str]:
    have = {a.decode() for a in available}
    return [a for a in wanted if a in have]


def server_algorithms() -> dict:
    """The listener's algorithm options: the lists above, as far as this asyncssh build has them."""
    from asyncssh.encryption import get_encryption_algs
    from asyncssh.kex import get_kex_algs
    from asyncssh.mac import get_mac_algs
    from asyncssh.public_key import get_public_key_algs

    return dict(kex_algs=_supported(KEX_PREFERRED, get_kex_algs()),
                encryption_algs=_supported(CIPHERS, get_encryption_algs()),
                mac_algs=_supported(MACS, get_mac_algs()),
                signature_algs=_supported(USER_SIG_ALGS, get_public_key_algs()),
                compression_algs=None)


def key_blobs(lines: list[str]) -> set[bytes]:
    """The public key blobs of OpenSSH key lines (unparsable lines are skipped, with a warning)."""
    blobs = set()
    for line in lines:
        try:
            blobs.add(asyncssh.import_public_key(line.strip()).public_data)
        except (asyncssh.KeyImportError, ValueError, TypeError):
            log.warning("ignoring an unparsable authorized key line")
    return blobs


def refuse_weak_signatures(key: asyncssh.SSHKey, on_refused: Callable[[str], None]) -> None:
    """Make `key` verify only signatures made with USER_SIG_ALGS; `on_refused(algorithm)` for others.

    asyncssh's signature_algs only sets what is advertised: it verifies a signature made with any
    algorithm the key type knows, SHA-1 `ssh-rsa` included. It verifies the login signature with
    this very key object once validate_public_key accepts the key, so its verify() refuses others."""
    verify = key.verify

    def verify_allowed(data: bytes, sig: bytes) -> bool:
        try:
            algorithm = SSHPacket(sig).get_string().decode("ascii", "replace")
        except PacketDecodeError:
            algorithm = "?"
        if algorithm in USER_SIG_ALGS:
            return verify(data, sig)
        on_refused(algorithm)
        return False

    key.verify = verify_allowed
