"""The batch function for xAPI statements: the engine's work when a plan's events are statements.

Like the tracking-log path of ``Anonymizer.anonymize_batch``, every line gets one outcome: a line
that holds no statement (``anonymizer.core.xapi.unwrap``) is rejected with its reason; a statement
whose verb and object type no rule names is dropped; the rest go through their rule's tree, which
covers the whole statement. A statement is routed (course and day) by what its written copy shows,
so a course or day the policy does not keep never places or selects it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from .operators import EventState
from .outcomes import BatchResult, Dropped, DropReason, NotSelected, Rejected, RejectReason
from .plan import join_path
from .lines import parse_line
from .stats import Stats, policy_label
from .strictjson import StrictJSONError
from .xapi import course_of, day_of, statement_key, unwrap

if TYPE_CHECKING:
    from .engine import Anonymizer

_REJECTED = {reason: Rejected(reason) for reason in RejectReason}
_APPEND_NEWLINE = orjson.OPT_APPEND_NEWLINE
_CACHE_LIMIT = 100_000
ROW = "<row>"  # the counted path of a ClickHouse row's columns, dropped beside the statement


class _Route:
    """How statements of one (verb id, object type) are handled: the plan (None: dropped), the
    drop reason, the label the manifest counts them under and its tally for the batch."""

    __slots__ = ("plan", "drop", "label", "tally")

    def __init__(self, plan, drop, label: str, tally: list[int]) -> None:
        self.plan, self.drop, self.label, self.tally = plan, drop, label, tally


def _route(anonymizer: Anonymizer, routes: dict, verb: str, kind: str) -> _Route:
    route = routes.get((verb, kind))
    if route is None:
        compiled = anonymizer.compiled
        index = compiled.rule_index(verb, kind)
        plan, outcome = compiled.outcome(index)
        label = policy_label(verb, None if index is None else compiled.rules[index][0].match)
        tally = anonymizer._tallies.get(label)
        if tally is None:
            tally = anonymizer._tallies[label] = [0, 0, 0]
        route = _Route(plan, DropReason.DROPPED_BY_RULE if outcome == "drop" else DropReason.NOT_IN_POLICY, label, tally)
        if len(routes) > _CACHE_LIMIT:
            routes.clear()
        routes[(verb, kind)] = route
    return route


def _actor_ids(statement: dict) -> tuple[object, ...]:
    """The actor's account name: its own identifier is scrubbed from the statement's free text."""
    actor = statement.get("actor")
    account = actor.get("account") if type(actor) is dict else None
    return (account.get("name"),) if type(account) is dict else ()


def anonymize_statements(anonymizer: Anonymizer, lines: list[bytes], first_line: int, name: str, routes: dict) -> BatchResult:
    """ANONYMIZER's batch function for lines of xAPI statements (see ``Anonymizer.anonymize_batch``)."""
    stats = Stats()
    results: list = []
    append = results.append
    selection = anonymizer.selection
    written = not_selected = 0
    placed: dict[int, list] = {}
    number = first_line
    for line in lines:
        parsed = parse_line(line)
        held = unwrap(parsed) if type(parsed) is dict else parsed
        if type(held) is not tuple:
            stats.reject(name, number, held.value)
            append(_REJECTED[held])
            number += 1
            continue
        statement, columns = held
        key = statement_key(statement)
        if key is None:
            stats.reject(name, number, RejectReason.MISSING_EVENT_TYPE.value)
            append(_REJECTED[RejectReason.MISSING_EVENT_TYPE])
            number += 1
            continue
        route = _route(anonymizer, routes, *key)
        plan = route.plan
        if plan is None:
            stats.dropped[route.drop.value] += 1
            route.tally[1] += 1
            append(Dropped(route.drop, anonymizer._route_value(route.label, course_of(statement), day_of(statement))))
            number += 1
            continue
        state = EventState(*_actor_ids(statement))
        try:
            out = plan(statement, state)
        except StrictJSONError as exc:
            stats.reject(name, number, exc.reason)
            append(_REJECTED[RejectReason(exc.reason)])
            number += 1
            continue
        # Placed by what the written statement shows.
        routing = anonymizer._route_value(route.label, course_of(out), day_of(out))
        if selection is not None and not selection.selects_statement(routing):
            not_selected += 1
            route.tally[2] += 1
            append(NotSelected(routing))
            number += 1
            continue
        fields = stats.fields
        for column in columns:
            fields[(route.label, join_path(ROW, column), "unnamed")] += 1
        for path, reason in state.dropped:
            fields[(route.label, path, reason)] += 1
        route.tally[0] += 1
        written += 1
        count = placed.get(id(routing))
        if count is None:
            placed[id(routing)] = [routing, 1]
        else:
            count[1] += 1
        append((orjson.dumps(out, option=_APPEND_NEWLINE), routing))
        number += 1
    return anonymizer._close_batch(stats, len(lines), results, placed, written, not_selected, name, first_line)
