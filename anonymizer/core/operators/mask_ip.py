"""``mask_ip``: truncate IPv4 and IPv6 addresses to a network prefix, and optionally name their country.

``203.0.113.77`` becomes ``203.0.113.0`` with the default /24; IPv6 keeps its first 48 bits.
A comma-separated forwarding chain is masked element by element. A value that is not an IP
address is dropped, never passed through.

``country`` (needs a country database, ``run --geoip FILE``): ``off`` (the default) leaves the
masked address; ``replace`` writes the country code of the address instead (``NZ``; ``ZZ`` when the
database does not place it); ``add`` writes both, as ``{"network": "203.0.113.0", "country": "NZ"}``.
The country is looked up on the whole address, before masking; for a forwarding chain, on its
first address (the client's). With ``min_group_size: N``
(N > 1), a network shared by fewer than N learners of the package is written as ``[RARE]`` (see
``anonymizer.core.suppression``).
"""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

from ..errors import PolicyError
from ..ipmask import make_ip_masker
from ..suppression import group_key, keep_only, without_unset_size
from .base import DROP, Operator, register


class MaskIpParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ipv4_prefix: int = Field(24, ge=0, le=32)
    ipv6_prefix: int = Field(48, ge=0, le=128)
    country: Literal["off", "replace", "add"] = "off"

    @field_validator("country", mode="before")
    @classmethod
    def _yaml_off(cls, value):
        # YAML 1.1 reads a bare `off` as false: `country: off` means what it says.
        return "off" if value is False else value

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

        if params.country == "off":
            return mask_ip
        geoip = getattr(ctx, "geoip", None)
        if geoip is None:
            raise PolicyError(
                f"mask_ip: 'country: {params.country}' needs a country database; pass --geoip FILE "
                "(a GeoLite2 or DB-IP country .mmdb file), or set 'country: off'"
            )
        country_of = geoip.country
        add = params.country == "add"

        def mask_ip_country(value, state):
            masked = mask_ip(value, state)
            if masked is DROP:
                return DROP
            country = country_of(value.split(",", 1)[0])
            if country is None:
                return DROP
            return {"network": masked, "country": country} if add else country

        return mask_ip_country


def needs_country_database(plan) -> bool:
    """Whether a plan (``anonymizer.core.plan``) has a ``mask_ip`` that asks for the country."""
    from ..plan import to_json  # the plan as data: every node, however nested

    def walk(node) -> bool:
        if isinstance(node, dict):
            if node.get("op") == "mask_ip" and isinstance(node.get("params"), dict) and node["params"].get("country", "off") != "off":
                return True
            return any(walk(value) for value in node.values())
        if isinstance(node, list):
            return any(walk(value) for value in node)
        return False

    return walk(orjson.loads(to_json(plan)))
