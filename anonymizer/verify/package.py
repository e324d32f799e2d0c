"""The entry point: verify one package (integrity, signature, harvest, scan, report)."""

from __future__ import annotations

import gc
import hashlib
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

import orjson

from ..core.errors import UsageError
from ..package.manifest import MANIFEST_NAME
from ..core.policy import Policy, load_policy
from ..io.inputs import WholeLines
from ..package.signing import SIGNATURE_NAME
from .harvest import Identifiers, harvest_inputs, harvest_roster, identifier_fields
from .integrity import check_listed, listed_files, present_files, read_file
from .report import IntegrityProblem, Report
from .scan import check_engine, MAX_LISTED, Scanner
from .signature import check_signature

SCAN_SIZE = 8 << 20  # whole lines are scanned in pieces of about this size
MAX_CARRY = 64 << 20  # a longer line is scanned in pieces
DEFAULT_POLICY = "research"


def _manifest_policy(manifest: dict | None) -> Policy | None:
    """The package's policy, when it is built in or its file still has the sha256 the manifest says."""
    policy = manifest.get("policy") if isinstance(manifest, dict) else None
    if not isinstance(policy, dict) or not isinstance(policy.get("source"), str):
        return None
    try:
        loaded = load_policy(policy["source"])
    except Exception:  # noqa: BLE001 - a policy that no longer loads is simply not used
        return None
    return loaded if loaded.sha256 == policy.get("sha256") else None


def _policy(manifest: dict | None, policy: Policy | str | None) -> Policy:
    """The policy whose identity fields are harvested and checked: POLICY when given, else the one
    the manifest names, else the built-in research policy."""
    if policy is not None:
        return load_policy(policy) if isinstance(policy, str) else policy
    return _manifest_policy(manifest) or load_policy(DEFAULT_POLICY)


@contextmanager
def _long_lived():
    """Harvesting and building make hundreds of thousands of small objects that live until the
    end: the cyclic collector would walk them again and again, during the build and the scan.
    It is paused while they are made, and they are then kept out of its way."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()  # thawed when the scan is over
    finally:
        if enabled:
            gc.enable()


def verify_package(
    directory: Path | str,
    *,
    against: Iterable[Path] = (),
    roster: Iterable[Path] = (),
    public_key=None,
    require_signature: bool = False,
    max_listed: int = MAX_LISTED,
    policy: Policy | str | None = None,
    engine: str = "auto",
) -> Report:
    """Check DIRECTORY against its manifest (and signature, with PUBLIC_KEY) and scan every byte
    in it for the identifiers of the raw inputs AGAINST and of ROSTER, and for what the detectors
    find. POLICY (a name, file or loaded policy) overrides the one the manifest names. Raises
    ``UsageError`` when DIRECTORY is not a package."""
    directory = Path(directory)
    against = list(against)
    roster = list(roster)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such package directory")
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UsageError(f"{directory}: holds no {MANIFEST_NAME}; not a package (or an unfinished one)")
    if require_signature and public_key is None:
        raise UsageError("--require-signature needs --public-key FILE: a signature can only be checked against the public key")
    check_engine(engine)
    report = Report(package=str(directory))
    started = time.perf_counter()
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        manifest = None
        report.integrity.append(IntegrityProblem(MANIFEST_NAME, "is not valid JSON"))
    listed = listed_files(manifest, directory, report) if manifest is not None else {}
    check_signature(directory, public_key, report)

    fields_policy = _policy(manifest, policy)
    fields = identifier_fields(fields_policy)
    phones = not against
    with _long_lived():
        identifiers = Identifiers()
        if against:
            identifiers.update(harvest_inputs(against, fields))
        if roster:
            identifiers.update(harvest_roster(roster))
        harvested = time.perf_counter()
        scanner = Scanner(identifiers, fields, phones=phones, max_listed=max_listed, engine=engine)
        built = time.perf_counter()
        built_cpu = time.process_time()
    report.checks = {
        "against": [str(p) for p in against],
        "roster": [str(p) for p in roster],
        "policy_fields_from": [fields_policy.name],
        "identifiers_searched_everywhere": scanner.substring_count,
        "identifiers_checked_in_fields": len(identifiers) - scanner.substring_count,
        "detectors": ["email", "ip"] + (["phone"] if phones else []),
        "engine": scanner.engine,
    }

    try:
        files, scanned_bytes, lines = _scan_package(directory, listed, scanner, report)
    finally:
        gc.unfreeze()
    finished = time.perf_counter()
    scan_cpu = time.process_time() - built_cpu
    report.findings = scanner.findings
    report.findings_total = scanner.total
    report.findings_by_kind = scanner.by_kind
    report.findings_by_class = scanner.by_class
    report.scanned = {"files": files, "bytes": scanned_bytes, "lines": lines, "identifiers": len(identifiers)}
    report.seconds = {
        "harvest": round(harvested - started, 3),
        "build": round(built - harvested, 3),
        "scan": round(finished - built, 3),
        "total": round(finished - started, 3),
        "scan_cpu": round(scan_cpu, 3),  # CPU time of the scan: on a shared machine, wall time measures other work too
    }
    return report


def _scan_package(directory: Path, listed: dict[str, dict], scanner: Scanner, report: Report) -> tuple[int, int, int]:
    """Check and scan every file in DIRECTORY: (files, bytes, lines) scanned."""
    present = present_files(directory)
    for relative in sorted(set(listed) - set(present)):
        report.integrity.append(IntegrityProblem(relative, "is listed in the manifest but missing"))
    scanned_bytes = lines = files = 0
    for relative in present:
        path = directory / relative
        if relative == SIGNATURE_NAME:
            continue
        entry = listed.get(relative)
        if entry is None and relative != MANIFEST_NAME:
            report.integrity.append(IntegrityProblem(relative, "is not listed in the manifest"))
        if not path.is_file():
            report.integrity.append(IntegrityProblem(relative, "is not a regular file"))
            continue
        digest = hashlib.sha256()
        files += 1
        size, count = _scan_file(path, relative, digest, scanner, report)
        scanned_bytes += size
        lines += count
        if entry is not None:
            check_listed(relative, path, entry, digest.hexdigest(), report)
    return files, scanned_bytes, lines


def _scan_file(path: Path, relative: str, digest, scanner: Scanner, report: Report) -> tuple[int, int]:
    """Scan the file at PATH in pieces of whole lines, hashing it into DIGEST: (bytes, lines)."""
    scanned = 0
    line_number = 1
    chunks = WholeLines(SCAN_SIZE, MAX_CARRY)
    for piece in read_file(path, digest):
        if isinstance(piece, str):
            report.integrity.append(IntegrityProblem(relative, piece))
            continue
        scanned += len(piece)
        head = chunks.feed(piece)
        if head is not None:
            scanner.scan(relative, head, line_number)
            line_number += head.count(b"\n")
    rest = chunks.end()
    if rest:
        scanner.scan(relative, rest, line_number)
        line_number += rest.count(b"\n") + (0 if rest.endswith(b"\n") else 1)
    return scanned, line_number - 1
