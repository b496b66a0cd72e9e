"""Validation of OpenSSH public keys given by users.

One accepted key is one line ``<type> <base64> [comment]``. Refused, each with a clear reason:
options (``command=...``, ``from=...``) or anything before the key type, a second key smuggled into
the same value, control characters, unknown or weak key types (DSA, RSA below 3072 bits), and blobs
that do not decode to a key of the named type. Accepted keys are re-serialised from the parsed key,
so what is stored or written to ``authorized_keys`` is never the raw text.

Used by the hub (key management) and, copied into the user image, by the container's start script.
Depends only on ``cryptography``, which both environments have.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.exceptions import UnsupportedAlgorithm

MIN_RSA_BITS = 3072
MAX_LINE_LENGTH = 8192
MAX_COMMENT_LENGTH = 100

KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
# Types OpenSSH knows that we refuse on purpose, named so the message can say why.
REFUSED_TYPES = {
    "ssh-dss": "DSA keys are insecure and disabled in OpenSSH",
}
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_COMMENT = re.compile(r"^[\w .@+:/=()\[\]-]*$")


class InvalidKey(ValueError):
    """A public key line that must not be accepted; the message says why, for the user."""


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: str  # base64, re-serialised from the parsed key
    comment: str
    bits: int

    @property
    def line(self) -> str:
        """The authorized_keys line: type, key and (sanitised) comment; never any options."""
        return f"{self.key_type} {self.blob} {self.comment}".rstrip()

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_public_key(text: str) -> PublicKey:
    """Parse one public key; raise InvalidKey with a user-facing reason if it is not acceptable."""
    if not isinstance(text, str):
        raise InvalidKey("a public key must be text")
    if len(text) > MAX_LINE_LENGTH:
        raise InvalidKey(f"too long ({len(text)} characters; at most {MAX_LINE_LENGTH})")
    text = text.strip()
    if not text:
        raise InvalidKey("empty key")
    if any(ch in text for ch in "\r\n"):
        raise InvalidKey("one key per entry: line breaks are not allowed")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InvalidKey("control characters are not allowed")
    fields = text.split(None, 2)
    key_type = fields[0]
    if key_type in REFUSED_TYPES:
        raise InvalidKey(f"{key_type}: {REFUSED_TYPES[key_type]}")
    if key_type not in KEY_TYPES:
        if any(t in text for t in KEY_TYPES + tuple(REFUSED_TYPES)):
            raise InvalidKey("options before the key (e.g. command=, from=) are not allowed")
        raise InvalidKey(f"unsupported key type {key_type[:40]!r}; use ssh-ed25519, ecdsa-sha2-nistp* or ssh-rsa (>= {MIN_RSA_BITS} bits)")
    if len(fields) < 2:
        raise InvalidKey("the key data after the type is missing")
    blob_text = fields[1]
    comment = fields[2] if len(fields) == 3 else ""
    if not _BASE64.match(blob_text):
        raise InvalidKey("the key data is not base64")
    if any(t in comment for t in KEY_TYPES + tuple(REFUSED_TYPES)) or re.search(r"AAAA[A-Za-z0-9+/]{40}", comment):
        raise InvalidKey("one key per entry: a second key was found after the first")
    if len(comment) > MAX_COMMENT_LENGTH or not _COMMENT.match(comment):
        raise InvalidKey(f"the comment may hold at most {MAX_COMMENT_LENGTH} letters, digits, spaces and .@+:/=()[]-_")
    try:
        blob = base64.b64decode(blob_text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("the key data is not valid base64") from None
    if _wire_string(blob) != key_type.encode():
        raise InvalidKey(f"the key data is not a {key_type} key")
    try:
        key = serialization.load_ssh_public_key(f"{key_type} {blob_text}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidKey(f"the key data is not a valid {key_type} key") from None
    bits = _check_strength(key_type, key)
    canonical = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    canonical_type, canonical_blob = canonical.decode().split()[:2]
    return PublicKey(canonical_type, canonical_blob, comment.strip(), bits)


def parse_authorized_keys(text: str) -> tuple[list[PublicKey], list[str]]:
    """Parse an authorized_keys-style text: one key per line, blank lines and # comments skipped.

    Returns the accepted keys (duplicates dropped) and one error message per refused line.
    """
    keys: list[PublicKey] = []
    errors: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            key = parse_public_key(stripped)
        except InvalidKey as exc:
            errors.append(f"line {number}: {exc}")
            continue
        if key.blob not in seen:
            seen.add(key.blob)
            keys.append(key)
    return keys, errors


def _wire_string(blob: bytes) -> bytes:
    """The first SSH wire-format string of a key blob: the key type it claims to be."""
    if len(blob) < 4:
        return b""
    length = int.from_bytes(blob[:4], "big")
    return blob[4 : 4 + length]


def _check_strength(key_type: str, key: object) -> int:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidKey(f"RSA keys must have at least {MIN_RSA_BITS} bits (this one has {key.key_size}); ed25519 is recommended")
        return key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256
    raise InvalidKey(f"unsupported key type {key_type}")
