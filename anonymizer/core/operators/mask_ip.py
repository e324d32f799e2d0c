"""``mask_ip``: truncate IPv4 and IPv6 addresses to a network prefix.

``203.0.113.77`` becomes ``203.0.113.0`` with the default /24; IPv6 keeps its first 48 bits.
A comma-separated forwarding chain is masked element by element. A value that is not an IP
address is dropped, never passed through. With ``min_group_size: N`` (N > 1), a network shared by
fewer than N learners of the package is written as ``[RARE]`` (see ``anonymizer.core.suppression``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from ..ipmask import make_ip_masker
from ..suppression import group_key, keep_only, without_unset_size
from .base import DROP, Operator, register


class MaskIpParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ipv4_prefix: int = Field(24, ge=0, le=32)
    ipv6_prefix: int = Field(48, ge=0, le=128)
    # 0 or 1: off. Otherwise the fewest learners a network must have to be written as it is.
    min_group_size: int = Field(0, ge=0, le=1_000_000)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return without_unset_size(handler(self))


@register
class MaskIp(Operator):
    name = "mask_ip"
    Params = MaskIpParams

    @classmethod
    def carries(cls, params):
        return "ip"

    @classmethod
    def build(cls, params, ctx):
        mask_one = make_ip_masker(params.ipv4_prefix, params.ipv6_prefix)
        if params.min_group_size > 1:
            masker, rare = mask_one, keep_only((ctx.groups or {}).get(group_key(cls.name, params.model_dump(mode="json"))))

            def mask_one(text):
                masked = masker(text)
                return None if masked is None else rare(masked)

        def mask_ip(value, state):
            if type(value) is not str:
                return DROP
            if "," in value:
                parts = [mask_one(part) for part in value.split(",")]
                return DROP if None in parts else ", ".join(parts)
            masked = mask_one(value)
            return DROP if masked is None else masked

        return mask_ip
