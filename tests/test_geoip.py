"""``mask_ip``'s ``country`` with a country database (``run --geoip``): a small database the test writes."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from anonymizer import Anonymizer, PolicyError, UsageError, parse_policy, run
from anonymizer.core.ipmask import GeoIP, GeoIPError
from anonymizer.core.lowering import lower
from anonymizer.core.operators.mask_ip import needs_country_database
from anonymizer.verify import verify_package

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "anonymizer.cli"]


def write_country_database(path: Path, networks: dict[str, dict]) -> Path:
    """A MaxMind DB file shaped like GeoLite2-Country: NETWORKS maps a CIDR to its record."""
    writer = MMDBWriter(ip_version=6, database_type="Test-Country", languages=["en"], ipv4_compatible=True)
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


NETWORKS = {
    "203.0.113.0/24": {"country": {"iso_code": "NZ", "names": {"en": "New Zealand"}}},
    "198.51.100.0/24": {"registered_country": {"iso_code": "FR"}},  # no 'country': the registered one
    "192.0.2.0/24": {"country": {"iso_code": "Alice Example"}},  # not a code: never copied out
    "2001:db8::/32": {"country": {"iso_code": "DE"}},
}


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    return write_country_database(tmp_path_factory.mktemp("geoip") / "countries.mmdb", NETWORKS)


POLICY = """
name: geo
identities:
  username: {format: text, prefix: "u_"}
envelope:
  username: {op: pseudonymize, identity: username}
  event_type: {op: keep, shape: word}
  ip: {op: mask_ip, country: COUNTRY}
  context.ip: {op: mask_ip, country: COUNTRY}
events:
  - match: page_view
"""


def policy_with(country: str):
    return parse_policy(POLICY.replace("COUNTRY", country).encode(), "geo.yaml")


def test_countries_of_addresses(database):
    geoip = GeoIP.load(database)
    assert geoip.country("203.0.113.77") == "NZ"
    assert geoip.country(" 203.0.113.1 ") == "NZ"
    assert geoip.country("::ffff:203.0.113.9") == "NZ"  # IPv4-mapped IPv6 is the IPv4 address
    assert geoip.country("[2001:db8::1]") == "DE"
    assert geoip.country("2001:db8::1%eth0") == "DE"
    assert geoip.country("198.51.100.7") == "FR"
    assert geoip.country("192.0.2.5") == "ZZ"  # a record that is not a country code
    assert geoip.country("8.8.8.8") == "ZZ"  # not in the database
    assert geoip.country("not an address") is None
    summary = geoip.summary()
    assert summary["database_type"] == "Test-Country" and len(summary["sha256"]) == 64 and summary["build_date"]


@pytest.mark.parametrize(
    ("country", "ip", "context_ip"),
    [
        ("off", "203.0.113.0", "2001:db8::"),
        ("replace", "NZ", "DE"),
        ("add", {"network": "203.0.113.0", "country": "NZ"}, {"network": "2001:db8::", "country": "DE"}),
    ],
)
def test_mask_ip_writes_the_country_instead_of_or_beside_the_network(database, key, country, ip, context_ip):
    anonymizer = Anonymizer(policy_with(country), key, geoip=GeoIP.load(database))
    out = anonymizer.anonymize_event({"event_type": "page_view", "ip": "203.0.113.77", "context": {"ip": "2001:db8:0:7::1"}})
    assert out["ip"] == ip and out["context"]["ip"] == context_ip


def test_a_forwarding_chain_is_placed_by_its_first_address_and_garbage_is_dropped(database, key):
    anonymizer = Anonymizer(policy_with("add"), key, geoip=GeoIP.load(database))
    out = anonymizer.anonymize_event({"event_type": "page_view", "ip": "2001:db8::5, 203.0.113.77"})
    assert out["ip"] == {"network": "2001:db8::, 203.0.113.0", "country": "DE"}
    out = anonymizer.anonymize_event({"event_type": "page_view", "ip": "alice@example.com"})
    assert "ip" not in out


def test_the_country_parameter_is_in_the_plan_and_needs_a_database(key):
    assert needs_country_database(lower(policy_with("replace")))
    assert not needs_country_database(lower(policy_with("off")))
    with pytest.raises(PolicyError, match="--geoip"):
        Anonymizer(policy_with("replace"), key)


def test_a_file_that_is_no_database_is_named(tmp_path):
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"203.0.113.77 is not a database" * 10)
    with pytest.raises(GeoIPError) as caught:
        GeoIP.load(bad)
    assert str(bad) in str(caught.value) and "203.0.113.77" not in str(caught.value)
    assert isinstance(caught.value, UsageError)
    with pytest.raises(GeoIPError, match="not found"):
        GeoIP.load(tmp_path / "missing.mmdb")


@pytest.mark.parametrize("country", ["replace", "add"])
def test_a_run_with_geoip_records_the_database_and_verifies(tmp_path, database, key, country):
    logs = tmp_path / "in.log"
    logs.write_bytes(b"".join(orjson.dumps({"event_type": "page_view", "username": f"learner{n}", "ip": f"203.0.113.{n}",
                                            "context": {"ip": f"2001:db8::{n}"}}) + b"\n" for n in range(1, 30)))
    result = run([logs], tmp_path / "p", policy_with(country), key, jobs=2, geoip=GeoIP.load(database))
    assert result.manifest["geoip"] == GeoIP.load(database).summary()
    lines = [orjson.loads(line) for line in gzip.decompress((tmp_path / "p" / "in.log.gz").read_bytes()).splitlines()]
    countries = (lambda value: value["country"]) if country == "add" else (lambda value: value)
    assert {countries(line["ip"]) for line in lines} == {"NZ"} and {countries(line["context"]["ip"]) for line in lines} == {"DE"}
    policy = tmp_path / "geo.yaml"
    policy.write_text(POLICY.replace("COUNTRY", country))
    report = verify_package(tmp_path / "p", against=[logs], roster=[], public_key=None, require_signature=False, policy=str(policy))
    assert report.ok, report.describe()


def test_cli_requires_geoip_for_a_country_policy_and_reads_it(tmp_path, database, key_file):
    policy = tmp_path / "geo.yaml"
    policy.write_text(POLICY.replace("COUNTRY", "replace"))
    log = tmp_path / "in.log"
    log.write_bytes(orjson.dumps({"event_type": "page_view", "ip": "203.0.113.7"}) + b"\n")
    missing = subprocess.run([*CLI, "run", str(log), "--out", str(tmp_path / "a"), "--key-file", str(key_file), "--policy", str(policy)],
                             capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and "--geoip" in missing.stderr and "Traceback" not in missing.stderr
    made = subprocess.run([*CLI, "run", str(log), "--out", str(tmp_path / "b"), "--key-file", str(key_file), "--policy", str(policy), "--geoip", str(database)],
                          capture_output=True, text=True, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    assert orjson.loads(gzip.decompress((tmp_path / "b" / "in.log.gz").read_bytes()))["ip"] == "NZ"
