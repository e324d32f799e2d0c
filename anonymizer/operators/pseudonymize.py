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

    if identity.roster is None or identity.person_identity is None:
        return pseudonymize_text
    return _linked(identity, pseudonymizer, pseudonymize_text)


def _linked(identity, pseudonymizer, unlinked):
    """A username pseudonym that derives from the person: ``prefix`` + their user-id pseudonym.

    A researcher can join ``u_8812…`` in a username field with ``8812…`` in a user-id field by
    string, without the key. Usernames the roster does not know (or people without an id) keep
    the plain pseudonym; emails of known people (an instructor typing one for a username) link too.
    """
    person_for = identity.roster.person_for
    of_person = make_pseudonymizer(identity.person_identity, pseudonymizer)
    prefix = identity.prefix
    linked: dict[str, str] = {}

    def pseudonymize_person(value, state):
        if type(value) is not str:
            return unlinked(value, state)
        stripped = value.strip()
        found = linked.get(stripped)
        if found is None:
            person = person_for(stripped) if stripped else None
            if person is None or person.id is None:
                return unlinked(value, state)
            found = prefix + str(of_person(int(person.id), state))
            if len(linked) >= 1 << 18:
                linked.clear()
            linked[stripped] = found
        return found

    return pseudonymize_person


@register
class Pseudonymize(Operator):
    name = "pseudonymize"
    Params = PseudonymizeParams

    @classmethod
    def build(cls, params, ctx):
        return make_pseudonymizer(ctx.identity(params.identity), ctx.pseudonymizer)
