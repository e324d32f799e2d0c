"""``pseudonymize``: replace an identifier with its keyed HMAC pseudonym.

The ``identity`` names the kind of identifier (``username``, ``user_id``, ``session`` ...);
every field that uses one identity gets the same pseudonym for the same value. A ``number``
identity canonicalizes numeric strings (``"42"`` and ``42`` are one user) and keeps the JSON
type it was given: an integer stays an integer, a numeric string stays a string.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..text.detectors import EMAIL_PATTERN
from .base import DROP, Operator, register


class PseudonymizeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identity: str


EMAIL_NAMESPACE = "email"


def _is_email(text: str) -> bool:
    return "@" in text and EMAIL_PATTERN.fullmatch(text) is not None


def make_pseudonymizer(identity, pseudonymizer):
    """The value function for IDENTITY; shared with the operators that pseudonymize inside text and URLs."""
    namespace, prefix = identity.name, identity.prefix
    text, number = pseudonymizer.text, pseudonymizer.number
    fold = identity.fold

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
                return prefix + text(namespace, stripped.lower() if fold else stripped)
            if kind is float and value.is_integer():
                return number(namespace, str(int(value)))
            return DROP

        return pseudonymize_number

    # An email typed where a username belongs (the instructor dashboard's `student`) gets a
    # pseudonym of its own, from the address lower-cased: never its raw value, and never the
    # pseudonym some username equal to it would get.
    emails = namespace == "username"

    def pseudonymize_text(value, state):
        kind = type(value)
        if kind is str:
            stripped = value.strip()
            if not stripped:
                return value
            if emails and _is_email(stripped):
                return prefix + text(EMAIL_NAMESPACE, stripped.lower())
            return prefix + text(namespace, stripped.lower() if fold else stripped)
        if kind is int:
            return prefix + text(namespace, str(value))
        return DROP

    if identity.roster is None or identity.person_identity is None:
        return pseudonymize_text
    if namespace == EXTERNAL_ID:
        return _linked_external(identity, pseudonymizer, pseudonymize_text)
    return _linked(identity, pseudonymizer, pseudonymize_text)


EXTERNAL_ID = "external_id"


def _linked_external(identity, pseudonymizer, unlinked):
    """An external id (an xAPI actor's ``account.name``) of a person the roster knows (its
    ``external_id`` column) gets that person's username pseudonym: the one their username and,
    through it, their user id have in the tracking logs. Other external ids keep their own."""
    roster = identity.roster
    username = identity.person_identity  # the linked username identity
    of_username = make_pseudonymizer(username, pseudonymizer)
    of_user_id = make_pseudonymizer(username.person_identity, pseudonymizer) if username.person_identity is not None else None

    def pseudonymize_external(value, state):
        if type(value) is str:
            person = roster.by_external_id.get(value.strip().lower())
            if person is not None:
                if person.usernames:
                    return of_username(person.usernames[0], state)
                if person.listed and person.id is not None and of_user_id is not None:
                    return username.prefix + str(of_user_id(int(person.id), state))
        return unlinked(value, state)

    return pseudonymize_external


def _linked(identity, pseudonymizer, unlinked):
    """A username pseudonym that derives from the person the roster knows.

    A person listed in a roster file with an id gets ``prefix`` + their user-id pseudonym, so a
    researcher can join ``u_8812…`` in a username field with ``8812…`` in a user-id field by
    string, without the key. An email of a known person (an instructor typing one for a
    username) resolves to that person's username pseudonym. People only learned from the inputs
    are never linked to their id: their pseudonym must not depend on which other logs a run
    happened to read. Values nobody knows keep the plain pseudonym.
    """
    person_for = identity.roster.person_for
    of_person = make_pseudonymizer(identity.person_identity, pseudonymizer)
    prefix = identity.prefix
    linked: dict[str, str] = {}

    def resolve(stripped: str, state) -> str | None:
        person = person_for(stripped)
        if person is None:
            return None
        if person.listed and person.id is not None:
            return prefix + str(of_person(int(person.id), state))
        if _is_email(stripped) and person.usernames:
            return unlinked(person.usernames[0], state)
        return None

    def pseudonymize_person(value, state):
        if type(value) is not str:
            return unlinked(value, state)
        stripped = value.strip()
        if not stripped:
            return value  # blank: kept as it is (cached by its stripped form, "\t" would become " ")
        found = linked.get(stripped)
        if found is None:
            found = resolve(stripped, state) or unlinked(value, state)
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
    def carries(cls, params):
        return params.identity

    @classmethod
    def build(cls, params, ctx):
        return make_pseudonymizer(ctx.identity(params.identity), ctx.pseudonymizer)
