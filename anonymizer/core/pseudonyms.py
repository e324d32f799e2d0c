"""Keyed HMAC-SHA256 pseudonyms, one namespace per kind of identifier.

``HMAC(key, namespace || 0x00 || value)``: the same value in the same namespace gives the
same pseudonym in every file, field and run under one key; without the key it cannot be
reversed or recomputed. Results are cached in bounded dictionaries because the same few
thousand learners recur in millions of events.
"""

from __future__ import annotations

import hmac

from .keys import Key

# The version of the derivation, recorded in the manifest. Raise it whenever any known-answer
# vector (tests/vectors/) changes: packages of two versions no longer join on their pseudonyms.
# 2: usernames are derived from their lower-cased form.
PSEUDONYM_VERSION = 2
TEXT_HEX_CHARS = 20  # 80 bits: collisions stay improbable for hundreds of millions of values
NUMBER_BITS = 53  # largest integer every JSON reader (including JavaScript) holds exactly
_CACHE_LIMIT = 1 << 17


class _BoundedCache(dict):
    """Results by key, made by MAKE on a miss; emptied when it holds LIMIT, since the recurring
    values refill it at once and a bound keeps memory flat over years of logs."""

    def __init__(self, make, limit: int = _CACHE_LIMIT) -> None:
        super().__init__()
        self.make = make
        self.limit = limit

    def __missing__(self, key):
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.make(*key)
        return value


class Pseudonymizer:
    """Derives pseudonyms under one key. Picklable: it is rebuilt from the key, never from live state."""

    def __init__(self, key: Key) -> None:
        self._key = key
        self._secret = key.secret
        self._text_cache = _BoundedCache(lambda namespace, value: self.digest(namespace, value).hex()[:TEXT_HEX_CHARS])
        self._number_cache = _BoundedCache(
            lambda namespace, value: (int.from_bytes(self.digest(namespace, value)[:8], "big") >> (64 - NUMBER_BITS)) or 1
        )

    def __reduce__(self):
        return (Pseudonymizer, (self._key,))

    def digest(self, namespace: str, value: str) -> bytes:
        """The raw 32-byte HMAC of VALUE in NAMESPACE."""
        return hmac.digest(self._secret, namespace.encode() + b"\x00" + value.encode("utf-8", "surrogatepass"), "sha256")

    def text(self, namespace: str, value: str) -> str:
        """A hexadecimal pseudonym for VALUE."""
        return self._text_cache[(namespace, value)]

    def number(self, namespace: str, value: str) -> int:
        """A positive integer pseudonym (below 2**53) for VALUE."""
        return self._number_cache[(namespace, value)]
