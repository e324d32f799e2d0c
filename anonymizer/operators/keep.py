"""``keep``: copy the value (and everything under it) unchanged.

``authored: true`` says that the policy's author has checked that the field holds text written
by the course team or the platform (a problem's question, an exam's name, a command name), never
by learners: ``policy check`` then does not warn when it holds prose. It changes nothing in a run.
"""

from pydantic import BaseModel, ConfigDict

from .base import Operator, register


class KeepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    authored: bool = False


@register
class Keep(Operator):
    name = "keep"
    Params = KeepParams
    leaf = False

    @classmethod
    def build(cls, params, ctx):
        return lambda value, state: value
