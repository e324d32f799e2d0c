"""``mask_ip``: truncate IPv4 and IPv6 addresses to a network prefix.

``203.0.113.77`` becomes ``203.0.113.0`` with the default /24; IPv6 keeps its first 48 bits.
A comma-separated forwarding chain is masked element by element. A value that is not an IP
address is dropped, never passed through.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..ipmask import make_ip_masker
from .base import DROP, Operator, register


class MaskIpParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ipv4_prefix: int = Field(24, ge=0, le=32)
    ipv6_prefix: int = Field(48, ge=0, le=128)


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

        def mask_ip(value, state):
            if type(value) is not str:
                return DROP
            if "," in value:
                parts = [mask_one(part) for part in value.split(",")]
                return DROP if None in parts else ", ".join(parts)
            masked = mask_one(value)
            return DROP if masked is None else masked

        return mask_ip
