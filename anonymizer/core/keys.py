"""Pseudonymization keys: generation, loading and the public key id.

A key file holds 32 random bytes written as 64 hexadecimal digits and a newline, as ``keygen``
writes it. That is the only format accepted (white space around the digits is ignored): a
passphrase or raw bytes would make the key depend on how the file was typed (``echo`` adds a
newline, ``printf`` does not). The key itself is never printed; the key id (an HMAC of a
constant under the key) names it in manifests.

Scoped keys: ``derive_scoped_key(master, label)`` is HKDF-SHA256 (RFC 5869) of the master key
with the fixed salt ``SCOPE_SALT`` and the label, UTF-8, as ``info``. Packages built under two
labels share no pseudonym, and nothing in either names the master key. ``derive_course_key``
derives, the same way under its own salt, one key per course from a run key
(``--pseudonyms per-course``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import KeyFileError, UsageError

KEY_BYTES = 32
KEY_ENV_VAR = "ANONYMIZER_KEY_FILE"
_KEY_TEXT = re.compile(rb"[0-9a-fA-F]{%d}" % (2 * KEY_BYTES))
_HOW_TO_MAKE = "create one with 'anonymizer keygen --out FILE'"
# Fixed, public salts of the two derivations (RFC 5869 allows a constant salt): part of the
# pseudonym derivation, so changing either changes every scoped or per-course pseudonym.
SCOPE_SALT = b"anonymizer scope v1"
COURSE_SALT = b"anonymizer course v1"
NO_COURSE = "_no_course"  # the scope of events that name no course
SCOPE_MAX_CHARS = 200


@dataclass(frozen=True)
class Key:
    """A secret pseudonymization key. Its repr never shows the secret."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < KEY_BYTES:
            raise KeyFileError(
                f"the key is {len(self.secret)} bytes long; at least {KEY_BYTES} are required "
                "(create one with 'anonymizer keygen --out FILE')"
            )

    @property
    def key_id(self) -> str:
        """A public name for the key: equal ids mean equal keys, and it reveals nothing of the key."""
        return "k1-" + hmac.new(self.secret, b"anonymizer key id v1", hashlib.sha256).hexdigest()[:16]


def generate_key() -> Key:
    """A new random key from the operating system's CSPRNG."""
    return Key(secrets.token_bytes(KEY_BYTES))


def write_key(key: Key, path: Path) -> None:
    """Write a key file readable by its owner only; refuse to overwrite an existing file."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create the key file ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.secret.hex().encode() + b"\n")
    os.chmod(path, 0o600)


def load_key(path: Path | str | None, warn: Callable[[str], None] | None = None) -> Key:
    """Load the key from PATH, or from the file named by $ANONYMIZER_KEY_FILE when PATH is None.
    WARN, when given, is told (in words, never the key) when the file is readable by others."""
    if path is None:
        env = os.environ.get(KEY_ENV_VAR)
        if not env:
            raise KeyFileError(f"no key given: pass --key-file FILE or set {KEY_ENV_VAR} ({_HOW_TO_MAKE})")
        path = env
    path = Path(path)
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found ({_HOW_TO_MAKE})") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror})") from None
    text = data.strip()
    if not _KEY_TEXT.fullmatch(text):
        raise KeyFileError(f"{path}: {_malformed(text)}; a key file holds exactly {2 * KEY_BYTES} hex digits ({_HOW_TO_MAKE})")
    if warn is not None and mode & (stat.S_IRGRP | stat.S_IROTH):
        warn(f"{path}: the key file is readable by its group or by others; restrict it with 'chmod 600 {path}'")
    return Key(bytes.fromhex(text.decode("ascii")))


def _malformed(text: bytes) -> str:
    """What is wrong with a key file's content, in words that reveal none of it beyond its length."""
    if not text:
        return "the key file is empty"
    if all(chr(b) in "0123456789abcdefABCDEF" for b in text):
        return f"the key file holds {len(text)} hex digits, not {2 * KEY_BYTES}"
    return "the key file holds something other than hex digits (a passphrase or raw bytes are not accepted)"


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> Key:
    return Key(HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(secret))


def check_scope(label: str) -> str:
    """LABEL as a scope label, or a ``UsageError``: 1 to 200 printable characters. (It is printed in
    the manifest; a control character or a blank label is a typing mistake.)"""
    if not isinstance(label, str) or not label.strip() or label != label.strip():
        raise UsageError("--scope: the label is empty or has white space around it; give a label such as 'team-a-2026'")
    if len(label) > SCOPE_MAX_CHARS or not label.isprintable():
        raise UsageError(f"--scope: the label must be at most {SCOPE_MAX_CHARS} printable characters")
    return label


def derive_scoped_key(master: Key, label: str) -> Key:
    """The run key of scope LABEL: HKDF-SHA256(master, salt=SCOPE_SALT, info=LABEL in UTF-8)."""
    return _hkdf(master.secret, SCOPE_SALT, check_scope(label).encode("utf-8"))


def derive_course_key(run_key: Key, course_id: str | None) -> Key:
    """The key of one course's pseudonyms under RUN_KEY: HKDF-SHA256(run key, salt=COURSE_SALT,
    info=``course:`` + the course key), or info ``_no_course`` for events that name no course (the
    prefix keeps a course from ever deriving the key of the events without one)."""
    info = NO_COURSE.encode() if course_id is None else b"course:" + course_id.encode("utf-8", "surrogatepass")
    return _hkdf(run_key.secret, COURSE_SALT, info)
