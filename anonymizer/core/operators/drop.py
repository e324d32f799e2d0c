"""``drop``: remove the field. Fields no rule names are dropped anyway; this says so explicitly."""

from .base import DROP, Operator, register


@register
class Drop(Operator):
    name = "drop"
    leaf = False

    @classmethod
    def build(cls, params, ctx):
        return lambda value, state: DROP
