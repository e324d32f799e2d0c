"""``primary_language``: keep only the first language of an Accept-Language header.

``en-US,en;q=0.8,fr;q=0.6`` becomes ``en-US``: the learner's main language stays for research,
the rarer combination of secondary languages (a fingerprint) goes.
"""

from __future__ import annotations

import re

from .base import DROP, Operator, register

# A language (ISO 639: 2 or 3 letters), an optional script (4 letters) and an optional region (2
# letters or 3 digits), as BCP 47 writes them: nothing longer can be a language, and a free-form
# word in the header (a name, a username) must not pass as one. Variants and extensions go.
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?$|^\*$")


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
