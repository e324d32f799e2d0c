"""Pseudonymization keys: generation, loading and the public key id.

A key file holds 32 random bytes written as 64 hexadecimal characters and a newline.
Raw binary files of at least 32 bytes are accepted too. The key itself is never printed;
the key id (an HMAC of a constant under the key) names it in manifests.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

from .errors import KeyFileError

KEY_BYTES = 32
KEY_ENV_VAR = "ANONYMIZER_KEY_FILE"
_HEX = set(string.hexdigits.encode())


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


def load_key(path: Path | str | None) -> Key:
    """Load the key from PATH, or from the file named by $ANONYMIZER_KEY_FILE when PATH is None."""
    if path is None:
        env = os.environ.get(KEY_ENV_VAR)
        if not env:
            raise KeyFileError(
                f"no key given: pass --key-file FILE or set {KEY_ENV_VAR} "
                "(create a key with 'anonymizer keygen --out FILE')"
            )
        path = env
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror})") from None
    text = data.strip()
    if text and all(b in _HEX for b in text):
        if len(text) % 2:
            raise KeyFileError(f"{path}: the key file holds an odd number of hex digits")
        secret = bytes.fromhex(text.decode())
    else:
        secret = data
    try:
        return Key(secret)
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
