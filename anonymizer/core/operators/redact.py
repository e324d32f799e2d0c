"""``redact``: replace the value, whatever it is, with a fixed one."""

from typing import Any

from pydantic import BaseModel, ConfigDict

from .base import Operator, register


class RedactParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = "[REDACTED]"


@register
class Redact(Operator):
    name = "redact"
    Params = RedactParams
    leaf = False

    @classmethod
    def build(cls, params, ctx):
        fixed = params.value
        return lambda value, state: fixed
