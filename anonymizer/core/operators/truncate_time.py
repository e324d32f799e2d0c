"""``truncate_time``: coarsen an ISO 8601 timestamp to a unit (second, minute, hour, day, month, year).

``2014-03-03T16:19:05.584523+00:00`` truncated to the hour is ``2014-03-03T16:00:00+00:00``.
The time zone offset is kept as written. A value that is not a timestamp is dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .base import DROP, Operator, register

_RESET = {
    "second": {"microsecond": 0},
    "minute": {"second": 0, "microsecond": 0},
    "hour": {"minute": 0, "second": 0, "microsecond": 0},
    "day": {"hour": 0, "minute": 0, "second": 0, "microsecond": 0},
    "month": {"day": 1, "hour": 0, "minute": 0, "second": 0, "microsecond": 0},
    "year": {"month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0, "microsecond": 0},
}


class TruncateTimeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: Literal["second", "minute", "hour", "day", "month", "year"] = "hour"


@register
class TruncateTime(Operator):
    name = "truncate_time"
    Params = TruncateTimeParams

    @classmethod
    def build(cls, params, ctx):
        reset = _RESET[params.unit]

        def truncate_time(value, state):
            if type(value) is not str:
                return DROP
            text = value.strip()
            zulu = text.endswith(("Z", "z"))
            if zulu:
                text = text[:-1] + "+00:00"
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                return DROP
            out = moment.replace(**reset).isoformat(sep="T" if "T" in value else " ")
            return out[:-6] + "Z" if zulu else out  # the offset as written: "Z" stays "Z"

        return truncate_time
