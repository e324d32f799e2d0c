"""``keep``: copy the value (and everything under it) unchanged."""

from .base import Operator, register


@register
class Keep(Operator):
    name = "keep"
    leaf = False

    @classmethod
    def build(cls, params, ctx):
        return lambda value, state: value
