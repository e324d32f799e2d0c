"""``pseudonymize``: replace an identifier with its keyed HMAC pseudonym.

The ``identity`` names the kind of identifier (``username``, ``user_id``, ``session`` ...);
every field that uses one identity gets the same pseudonym for the same value. A ``number``
identity canonicalizes numeric strings (``"42"`` and ``42`` are one user) and keeps the JSON
type it was given: an integer stays an integer, a numeric string stays a string.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .base import DROP, Operator, register


class PseudonymizeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identity: str


def make_pseudonymizer(identity, pseudonymizer):
    """The value function for IDENTITY; shared with the operators that pseudonymize inside text and URLs."""
    namespace, prefix = identity.name, identity.prefix
    text, number = pseudonymizer.text, pseudonymizer.number

    if identity.format == "number":

        def pseudonymize_number(value, state):
            kind = type(value)
            if kind is int:
                return number(namespace, str(value))
            if kind is str:
                stripped = value.strip()
                if stripped.isdecimal() and stripped.isascii():
                    return str(number(namespace, str(int(stripped))))
                if not stripped:
                    return value
                return prefix + text(namespace, stripped)
            if kind is float and value.is_integer():
                return number(namespace, str(int(value)))
            return DROP

        return pseudonymize_number

    def pseudonymize_text(value, state):
        kind = type(value)
        if kind is str:
            stripped = value.strip()
            return prefix + text(namespace, stripped) if stripped else value
        if kind is int:
            return prefix + text(namespace, str(value))
        return DROP

    return pseudonymize_text


@register
class Pseudonymize(Operator):
    name = "pseudonymize"
    Params = PseudonymizeParams

    @classmethod
    def build(cls, params, ctx):
        return make_pseudonymizer(ctx.identity(params.identity), ctx.pseudonymizer)
