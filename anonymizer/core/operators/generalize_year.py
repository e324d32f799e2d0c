"""``generalize_year``: a year (of birth) coarsened to a band of ``width`` years.

With the default width of 5, ``1988`` becomes ``1985-1989``: the band starts at a multiple of the
width and is written ``FIRST-LAST``, both ends included. A value that is not a year written as
four digits (``1988``, or ``1988.0`` as some exports write numbers) is dropped.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from .base import DROP, Operator, register

_YEAR = re.compile(r"(\d{4})(?:\.0+)?")


class GeneralizeYearParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = Field(5, ge=2, le=100)


def year_band(year: int, width: int) -> str:
    """The band of WIDTH years YEAR falls in, written ``FIRST-LAST``."""
    first = year - year % width
    return f"{first}-{first + width - 1}"


@register
class GeneralizeYear(Operator):
    name = "generalize_year"
    Params = GeneralizeYearParams

    @classmethod
    def build(cls, params, ctx):
        width = params.width

        def generalize_year(value, state):
            if type(value) is not str:
                return DROP
            match = _YEAR.fullmatch(value.strip())
            if match is None:
                return DROP
            return year_band(int(match.group(1)), width)

        return generalize_year
