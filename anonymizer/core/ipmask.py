"""Masking an IP address to its network: shared by the ``mask_ip`` operator and ``verify``
(which recognises an address that is its own mask); and the country of an address, from a
MaxMind DB country database the user provides (``--geoip``; none is bundled)."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import re
from datetime import datetime, timezone
from pathlib import Path

from .errors import UsageError


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
            if address.version == 4:
                prefix = ipv4_prefix
            else:
                prefix = min([ipv6_prefix] + [offset + ipv4_prefix for offset in embedded_ipv4_offsets(address)])
            result = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
        cache[text] = result
        return result

    return mask_one


_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_COMPATIBLE = ipaddress.ip_network("::/96")
_ISATAP_ID = (0x00005EFE, 0x02005EFE)  # bits 64-95 of an ISATAP interface id (universal bit off, on)


def embedded_ipv4_offsets(address: ipaddress.IPv6Address) -> list[int]:
    """The bit offsets at which the IPv6 ADDRESS carries an IPv4 address (6to4, Teredo's server
    and client, NAT64, IPv4-compatible, ISATAP): masking keeps no more of such an IPv4 address
    than the IPv4 prefix keeps of a plain one."""
    number = int(address)
    offsets = []
    if address in _SIX_TO_FOUR:
        offsets.append(16)
    elif address in _TEREDO:
        offsets += [32, 96]  # the server, then the client (inverted)
    elif address in _NAT64 or (address in _COMPATIBLE and number > 0xFFFF):
        offsets.append(96)
    elif address in _NAT64_LOCAL:
        offsets.append(48)  # RFC 8215: a network-specific prefix of /48 or longer; keep none of it
    if (number >> 32) & 0xFFFFFFFF in _ISATAP_ID:
        offsets.append(96)
    return offsets


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """TEXT as an address, read as ``make_ip_masker`` reads it (brackets, zone id and IPv4-mapped
    IPv6 undone), or None when it is not one."""
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    candidate = candidate.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


UNKNOWN_COUNTRY = "ZZ"  # ISO 3166 leaves ZZ to users; it is the usual code for "unknown"
_ISO_CODE = re.compile(r"[A-Z]{2}", re.ASCII)


class GeoIPError(UsageError):
    """A country database cannot be read."""


class GeoIP:
    """A MaxMind DB country database (GeoLite2-Country, DB-IP country), held in memory.

    Read once from its file: every worker gets the same bytes (it pickles as them), so a file
    replaced during a run cannot make two workers disagree. ``summary`` is what the manifest
    says of it: its type, build date and sha256, never an address.
    """

    def __init__(self, data: bytes, name: str = "<geoip>") -> None:
        try:
            import maxminddb  # imported when used: only --geoip needs it (the ``geoip`` extra)
        except ImportError:
            raise GeoIPError(f"{name}: reading a country database needs the maxminddb library: pip install 'edx-log-anonymizer[geoip]'") from None

        self._data = data
        self.name = name
        try:
            self._reader = maxminddb.open_database(io.BytesIO(data), maxminddb.MODE_FD)
        except (maxminddb.InvalidDatabaseError, ValueError, OSError):
            raise GeoIPError(f"{name}: not a MaxMind DB database (a GeoLite2 or DB-IP country .mmdb file)") from None
        self.sha256 = hashlib.sha256(data).hexdigest()
        self._cache: dict[str, str] = {}

    @classmethod
    def load(cls, path: Path | str) -> GeoIP:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise GeoIPError(f"{path}: country database not found (none is bundled: give a GeoLite2 or DB-IP country .mmdb file)") from None
        except OSError as exc:
            raise GeoIPError(f"{path}: cannot read the country database ({exc.strerror})") from None
        return cls(data, str(path))

    def __reduce__(self):
        return (GeoIP, (self._data, self.name))

    def summary(self) -> dict:
        """The database as the manifest names it."""
        meta = self._reader.metadata()
        built = datetime.fromtimestamp(meta.build_epoch, timezone.utc).date().isoformat() if isinstance(meta.build_epoch, int) else None
        database_type = meta.database_type if isinstance(meta.database_type, str) and database_type_ok(meta.database_type) else None
        return {"database_type": database_type, "build_date": built, "sha256": self.sha256}

    def country(self, text: str) -> str | None:
        """The ISO 3166 code of the country of the address TEXT, ``ZZ`` when the database does
        not place it, None when TEXT is not an address."""
        found = self._cache.get(text)
        if found is not None:
            return found
        address = parse_address(text)
        if address is None:
            return None
        try:
            record = self._reader.get(str(address))
        except (ValueError, TypeError):
            record = None
        code = _iso_code(record)
        if len(self._cache) > 65536:
            self._cache.clear()
        self._cache[text] = code
        return code


def _iso_code(record: object) -> str:
    """The country code of a database RECORD (its ``country``, else its ``registered_country``);
    ``ZZ`` for anything else: a code that is not two capital letters is never copied out."""
    if isinstance(record, dict):
        for section in ("country", "registered_country"):
            found = record.get(section)
            code = found.get("iso_code") if isinstance(found, dict) else None
            if isinstance(code, str) and _ISO_CODE.fullmatch(code):
                return code
    return UNKNOWN_COUNTRY


def database_type_ok(text: str) -> bool:
    """A database type as the manifest may name it (``GeoLite2-Country``): a short plain name."""
    return re.fullmatch(r"[A-Za-z0-9._\- ]{1,64}", text) is not None


# An IPv4 address written inside a longer host name, with dots or dashes (``ec2-203-0-113-45.
# compute-1.amazonaws.com``, ``203-0-113-45.nip.io``, ``45.113.0.203.in-addr.arpa``).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_INSIDE = re.compile(rf"(?<![0-9A-Za-z]){_OCTET}([-.]){_OCTET}\1{_OCTET}\1{_OCTET}(?![0-9A-Za-z])", re.ASCII)
# A number as the URL standard's IPv4 parser reads one: decimal, octal (leading 0) or hex (0x).
_NUMBER = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)\Z", re.ASCII)


def host_holds_ip(host: str) -> bool:
    """Whether the URL host name HOST (no port) is or holds an IP address: an IPv4 or bracketed
    IPv6 address; a host whose last label is a number, which browsers read as an IPv4 address
    (``3405803821``, ``0xcb00712d``, ``0313.0.0161.055``: the URL standard's rule); an IPv4
    address with dots or dashes inside a longer name; an IPv6 address with dashes for colons as a
    label (``2001-db8--1.ipv6-literal.net``)."""
    if host.startswith("[") or ":" in host:
        return True  # only an IPv6 (or IPvFuture) address is written in brackets, or has colons
    labels = host.rstrip(".").split(".")
    if _NUMBER.match(labels[-1]):
        return True
    if _IPV4_INSIDE.search(host):
        return True
    for label in labels:
        if label.count("-") >= 2 and ":" not in label:
            try:
                ipaddress.IPv6Address(label.replace("-", ":").replace("s", "%", 1).split("%", 1)[0])
            except ValueError:
                continue
            return True
    return False


def url_host_ipv4(host: str) -> str | None:
    """The IPv4 address a browser reads in the URL host HOST (``3405803821``, ``0xcb00712d``,
    ``0313.0.0161.055``, ``203.7411757``: the URL standard's IPv4 parser), or None."""
    parts = host.rstrip(".").split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMBER.match(part) for part in parts):
        return None
    numbers = []
    for part in parts:
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            if not set(part) <= set("01234567"):
                return None
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return str(ipaddress.IPv4Address(value))
