"""Manifest signatures: Ed25519 key pairs and ``manifest.sig``.

A package is signed by signing the exact bytes of its ``manifest.json``; the manifest holds the
sha256 of every file, so the signature covers the whole package. ``manifest.sig`` is one line:
the 64-byte Ed25519 signature in base64. Key files are PEM: ``PREFIX.key`` (PKCS#8, the private
key, mode 0600) and ``PREFIX.pub`` (SubjectPublicKeyInfo, to hand to whoever verifies). Neither
is ever overwritten, and the private key is never printed; a signing key id (``s1-`` and 16 hex
digits of the sha256 of the raw public key) names the pair in messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..core.errors import KeyFileError
from .manifest import MANIFEST_NAME

SIGNATURE_NAME = "manifest.sig"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"

# What verify_signature says about a package.
VALID, INVALID, MISSING = "valid", "invalid", "missing"


def key_pair_paths(prefix: Path | str) -> tuple[Path, Path]:
    """The private and public key files for PREFIX: ``PREFIX.key`` and ``PREFIX.pub``."""
    prefix = str(prefix)
    return Path(prefix + PRIVATE_SUFFIX), Path(prefix + PUBLIC_SUFFIX)


def public_key_id(public_key: Ed25519PublicKey) -> str:
    """A short public name for a signing key pair."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "s1-" + hashlib.sha256(raw).hexdigest()[:16]


def _create(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create the key file ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def write_signing_key_pair(prefix: Path | str) -> tuple[Path, Path, str]:
    """Generate an Ed25519 key pair into ``PREFIX.key`` (0600) and ``PREFIX.pub``.

    Returns both paths and the signing key id. Refuses, before writing anything, when either
    file exists.
    """
    private_path, public_path = key_pair_paths(prefix)
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path}: already exists; refusing to overwrite a key (choose another --out prefix)")
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _create(private_path, private_pem, 0o600)
    _create(public_path, public_pem, 0o644)
    return private_path, public_path, public_key_id(private_key.public_key())


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def load_private_key(path: Path | str) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file PATH (as written by ``keygen --signing``)."""
    data = _read(Path(path), "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # The message of the underlying error is not shown: it could quote the file.
        raise KeyFileError(
            f"{path}: not an unencrypted PEM private key (create a signing key with "
            "'anonymizer keygen --signing --out PREFIX' and pass PREFIX.key)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM file PATH (``PREFIX.pub``)."""
    data = _read(Path(path), "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        hint = " (this looks like the private key: pass PREFIX.pub)" if b"PRIVATE KEY" in data else ""
        raise KeyFileError(f"{path}: not a PEM public key{hint}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: a {type(key).__name__}, not an Ed25519 public key")
    return key


def sign_manifest(directory: Path | str, private_key: Ed25519PrivateKey) -> Path:
    """Sign DIRECTORY/manifest.json as it is on disk; write ``manifest.sig`` beside it atomically."""
    directory = Path(directory)
    manifest_bytes = (directory / MANIFEST_NAME).read_bytes()
    signature = base64.b64encode(private_key.sign(manifest_bytes)) + b"\n"
    target = directory / SIGNATURE_NAME
    temporary = directory / f".{SIGNATURE_NAME}.partial"
    with open(temporary, "wb") as fh:
        fh.write(signature)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temporary, target)
    return target


def verify_signature(directory: Path | str, public_key: Ed25519PublicKey) -> str:
    """``valid``, ``invalid`` or ``missing``: does DIRECTORY/manifest.sig sign manifest.json under PUBLIC_KEY?"""
    directory = Path(directory)
    try:
        encoded = (directory / SIGNATURE_NAME).read_bytes()
    except FileNotFoundError:
        return MISSING
    try:
        manifest_bytes = (directory / MANIFEST_NAME).read_bytes()
        signature = base64.b64decode(encoded.strip(), validate=True)
        public_key.verify(signature, manifest_bytes)
    except (OSError, binascii.Error, ValueError, InvalidSignature):
        return INVALID
    return VALID
