"""Masking an IP address to its network: shared by the ``mask_ip`` operator and ``verify``
(which recognises an address that is its own mask)."""

from __future__ import annotations

import ipaddress


def make_ip_masker(ipv4_prefix: int, ipv6_prefix: int):
    """A cached function from one address string to its masked form, or None when it is not an address."""
    cache: dict[str, str | None] = {}

    v4_mask = (0xFFFFFFFF << (32 - ipv4_prefix)) & 0xFFFFFFFF

    def mask_v4(text: str) -> str | None:
        # Dotted-quad IPv4, the common case, without the ipaddress module's object overhead.
        parts = text.split(".")
        if len(parts) != 4:
            return None
        number = 0
        for part in parts:
            if not (part.isdigit() and part.isascii()) or len(part) > 3 or (len(part) > 1 and part[0] == "0"):
                return None
            octet = int(part)
            if octet > 255:
                return None
            number = (number << 8) | octet
        number &= v4_mask
        return f"{number >> 24}.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}"

    def mask_one(text: str) -> str | None:
        found = cache.get(text, False)
        if found is not False:
            return found
        if len(cache) > 65536:
            cache.clear()
        if ":" not in text:
            masked = mask_v4(text.strip())
            if masked is not None:
                cache[text] = masked
                return masked
        candidate = text.strip()
        if candidate.startswith("[") and candidate.endswith("]"):
            candidate = candidate[1:-1]
        candidate = candidate.split("%", 1)[0]  # IPv6 zone ids name an interface of the host
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            result = None
        else:
            if address.version == 6 and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            prefix = ipv4_prefix if address.version == 4 else ipv6_prefix
            result = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
        cache[text] = result
        return result

    return mask_one
