"""``pseudonymize_mbox``: an xAPI actor's mailbox, ``mbox`` or ``mbox_sha1sum``, as a pseudonym.

``mbox`` is ``mailto:`` and an address: the address is pseudonymized as ``identity`` pseudonymizes
it (with the ``username`` identity: a roster person's address gets that person's username
pseudonym, any other address one of its own). ``mbox_sha1sum`` (``hashed: true``) is the SHA-1 of
``mailto:`` and the address, unkeyed, so a guess at the address confirms it: it is never passed
through. A hash of a roster person's address gets that person's pseudonym; any other hash gets a
pseudonym of its own (``prefix`` and the HMAC of the hash, in the ``mbox_sha1sum`` namespace).
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict

from .base import DROP, Operator, register
from .pseudonymize import make_pseudonymizer

SHA1_NAMESPACE = "mbox_sha1sum"
_MAILTO = "mailto:"


class MboxParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identity: str = "username"
    hashed: bool = False


def _address(value: str) -> str:
    text = value.strip()
    return text[len(_MAILTO):].strip() if text[: len(_MAILTO)].lower() == _MAILTO else text


def _hashes(roster) -> dict[str, str]:
    """The SHA-1 of ``mailto:`` + each roster address (as written and lower-cased) → the address."""
    found: dict[str, str] = {}
    for person in roster.people if roster is not None else ():
        for email in person.emails:
            for spelling in (email, email.lower()):
                found.setdefault(hashlib.sha1((_MAILTO + spelling).encode("utf-8", "surrogatepass")).hexdigest(), email)
    return found


@register
class PseudonymizeMbox(Operator):
    name = "pseudonymize_mbox"
    Params = MboxParams

    @classmethod
    def carries(cls, params):
        return params.identity

    @classmethod
    def build(cls, params, ctx):
        identity = ctx.identity(params.identity)
        of_value = make_pseudonymizer(identity, ctx.pseudonymizer)
        if not params.hashed:

            def pseudonymize_mbox(value, state):
                if type(value) is not str:
                    return DROP
                address = _address(value)
                return of_value(address, state) if address else DROP

            return pseudonymize_mbox
        known = _hashes(ctx.roster)
        text = ctx.pseudonymizer.text
        prefix = identity.prefix

        def pseudonymize_sha1(value, state):
            if type(value) is not str or not value.strip():
                return DROP
            digest = value.strip().lower()
            address = known.get(digest)
            if address is not None:
                return of_value(address, state)
            return prefix + text(SHA1_NAMESPACE, digest)

        return pseudonymize_sha1
