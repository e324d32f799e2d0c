"""``primary_language``: keep only the first language of an Accept-Language header.

``en-US,en;q=0.8,fr;q=0.6`` becomes ``en-US``: the learner's main language stays for research,
the rarer combination of secondary languages (a fingerprint) goes.
"""

from __future__ import annotations

import re

from .base import DROP, Operator, register

_TAG = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$|^\*$")


@register
class PrimaryLanguage(Operator):
    name = "primary_language"

    @classmethod
    def build(cls, params, ctx):
        def primary_language(value, state):
            if type(value) is not str:
                return DROP
            first = value.split(",", 1)[0].split(";", 1)[0].strip()
            return first if _TAG.match(first) else DROP

        return primary_language
