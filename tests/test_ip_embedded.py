"""An IP address carried inside another form: an IPv4 address embedded in an IPv6 address (masked
as IPv4 is), a URL host that holds one (``[IP]``), and free text that writes one otherwise."""

from __future__ import annotations

import pytest

from anonymizer.core.ipmask import host_holds_ip, make_ip_masker, url_host_ipv4
from anonymizer.core.text.detectors import TextScrubber
from anonymizer.verify.forms import extra_forms
from tests.test_operators import apply, build

MASKED = [
    # 6to4: 2002::/16 then the IPv4 address; the default /24 keeps 2002::/40.
    ("2002:cb00:712d::1", "2002:cb00:7100::"),
    ("2002:cb00:712d:1234:5678::9", "2002:cb00:7100::"),
    # IPv4-mapped, in both spellings: masked and written as IPv4.
    ("::ffff:203.0.113.45", "203.0.113.0"),
    ("::ffff:cb00:712d", "203.0.113.0"),
    # IPv4-compatible, NAT64, Teredo (client inverted in the last 32 bits), ISATAP: the /48 removes it.
    ("::203.0.113.45", "::"),
    ("64:ff9b::203.0.113.45", "64:ff9b::"),
    ("64:ff9b:1:2:3:4:cb00:712d", "64:ff9b:1::"),
    ("2001:0:4136:e378:8000:63bf:34ff:8ed2", "2001:0:4136::"),
    ("2001:db8:1:2:0:5efe:203.0.113.45", "2001:db8:1::"),
    ("2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::"),
]


@pytest.mark.parametrize("address, masked", MASKED)
def test_mask_ip_masks_an_embedded_ipv4_as_ipv4(address, masked):
    assert apply(build("mask_ip"), address) == masked


@pytest.mark.parametrize(
    "address, masked",
    [
        ("2002:cb00:712d::1", "2002:cb00:7100::"),  # /128 for IPv6 still keeps only /24 of the IPv4
        ("::203.0.113.45", "::cb00:7100"),
        ("64:ff9b::203.0.113.45", "64:ff9b::cb00:7100"),
        ("2001:db8:1:2:0:5efe:203.0.113.45", "2001:db8:1:2:0:5efe:cb00:7100"),
        ("2001:0:4136:e378:8000:63bf:34ff:8ed2", "2001:0:4136:e300::"),
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_a_long_ipv6_prefix_still_masks_the_embedded_ipv4(address, masked):
    assert make_ip_masker(24, 128)(address) == masked


def test_a_6to4_address_left_at_its_slash_48_is_not_its_own_mask():
    # verify judges a masked field by this: the /48 of 6to4 held the whole IPv4 address.
    mask = make_ip_masker(24, 48)
    assert mask("2002:cb00:712d::") != "2002:cb00:712d::"


HOSTS = [
    "http://ec2-203-0-113-45.compute-1.amazonaws.com:8888/tree",
    "http://203-0-113-45.nip.io/",
    "http://203.0.113.45.nip.io/",
    "http://3405803821/",
    "http://0xcb00712d/",
    "http://0313.0.0161.055/",
    "http://203.7411757/",
    "http://2001-db8-85a3--8a2e-370-7334.ipv6-literal.net/",
]


@pytest.mark.parametrize("url", HOSTS)
def test_scrub_url_replaces_a_host_that_holds_an_ip(url):
    out = apply(build("scrub_url"), url)
    assert out.startswith("http://[IP]"), out
    assert (":8888" in out) == (":8888" in url)  # the port stays, as for a dotted address


@pytest.mark.parametrize("host", ["courses.edx.org", "lms.example.org", "www.youtube.com", "cdn-1-2.example.org", "s3.amazonaws.com", "localhost", "example.com."])
def test_ordinary_host_names_hold_no_ip(host):
    assert not host_holds_ip(host)
    assert apply(build("scrub_url"), f"https://{host}/") == f"https://{host}/"


@pytest.mark.parametrize("host", ["3405803821", "0xcb00712d", "0313.0.0161.055", "0xcb.0.0x71.45", "203.0.113.45"])
def test_url_host_ipv4_reads_a_host_as_a_browser_does(host):
    assert url_host_ipv4(host) == "203.0.113.45"


@pytest.mark.parametrize("host", ["example.com", "4294967296", "08.0.0.1", "1.2.3.4.5", "256.0.0.1"])
def test_url_host_ipv4_refuses_what_is_no_address(host):
    assert url_host_ipv4(host) is None


@pytest.mark.parametrize(
    "text",
    ["203[.]0[.]113[.]45", "203(.)0(.)113(.)45", "203[dot]0[dot]113[dot]45", "203 . 0 . 113 . 45",
     "2001-db8-85a3--8a2e-370-7334.ipv6-literal.net", "2002:cb00:712d::1", "::ffff:cb00:712d", "64:ff9b::203.0.113.45",
     "2001:0:4136:e378:8000:63bf:34ff:8ed2", "fe80::5efe:203.0.113.45", "::203.0.113.45"],
)
def test_free_text_finds_an_address_written_otherwise(text):
    out = TextScrubber().scrub(f"my box is {text} now")
    assert "[IP]" in out and "113" not in out and "cb00" not in out and "8a2e" not in out, out


def test_verify_searches_an_address_in_its_url_host_forms():
    forms = {form for _, form in extra_forms("ip", "203.0.113.45")}
    assert {b"3405803821", b"0xcb00712d", b"0313.0.0161.055", b"203[.]0[.]113[.]45", b"203 . 0 . 113 . 45", b"2002:cb00:712d:"} <= forms
