"""The report of a verification: integrity problems and findings (each with its leak class), as
text for people and as JSON. A finding names where and what kind, never the value."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

@dataclass
class Finding:
    """One leak: where it is and what kind of value, never the value."""

    file: str
    line: int
    path: str | None
    kind: str
    source: str  # input, roster, detector
    form: str  # as written, URL-encoded, JSON-escaped, normalized, field value, detected ...
    origin: str | None
    fingerprint: str
    leak_class: str = "free_text"  # see LEAK_CLASSES

    def as_dict(self) -> dict:
        return dict(vars(self))

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" + (f" {self.path}" if self.path else "")
        came = f", from {self.origin}" if self.origin else ""
        return f"LEAK {where}: {self.kind} ({self.source}, {self.form}{came}) class {self.leak_class} [{self.fingerprint}]"


@dataclass
class IntegrityProblem:
    """A file that does not match the manifest, or a signature that does not hold."""

    file: str
    problem: str

    def as_dict(self) -> dict:
        return dict(vars(self))

    def describe(self) -> str:
        return f"INTEGRITY {self.file}: {self.problem}"


@dataclass
class Report:
    """What a verification found. ``ok`` when nothing leaked and the package is intact."""

    package: str
    integrity: list[IntegrityProblem] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    findings_total: int = 0
    findings_by_kind: Counter = field(default_factory=Counter)
    findings_by_class: Counter = field(default_factory=Counter)
    signature: str = "not checked"
    checks: dict = field(default_factory=dict)
    scanned: dict = field(default_factory=lambda: {"files": 0, "bytes": 0, "lines": 0, "identifiers": 0})
    seconds: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.integrity and not self.findings_total

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "package": self.package,
            "integrity": [p.as_dict() for p in self.integrity],
            "signature": self.signature,
            "findings": [f.as_dict() for f in self.findings],
            "findings_total": self.findings_total,
            "findings_not_listed": self.findings_total - len(self.findings),
            "findings_by_kind": dict(sorted(self.findings_by_kind.items())),
            "findings_by_class": dict(sorted(self.findings_by_class.items())),
            "checks": self.checks,
            "scanned": self.scanned,
            "seconds": self.seconds,
        }

    def describe(self) -> str:
        """The report as text: one line per problem, then a summary."""
        lines = [p.describe() for p in self.integrity]
        lines += [f.describe() for f in self.findings]
        not_listed = self.findings_total - len(self.findings)
        if not_listed:
            lines.append(f"… and {not_listed} more finding(s) not listed")
        scanned = self.scanned
        megabytes = scanned["bytes"] / 1e6
        took = self.seconds.get("scan", 0.0)
        rate = f", {megabytes / took:.0f} MB/s" if took >= 0.5 else ""
        lines.append(
            f"scanned {scanned['files']} file(s), {megabytes:.1f} MB decompressed, {scanned['lines']} lines, "
            f"for {scanned['identifiers']} identifier(s) and the detectors ({', '.join(self.checks.get('detectors', []))}) "
            f"in {took:.1f} s{rate}; signature: {self.signature}"
        )
        if self.ok:
            lines.append("verify: OK: no leak found and the package matches its manifest")
        else:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.findings_by_kind.items()))
            classes = ", ".join(f"{n} {c}" for c, n in sorted(self.findings_by_class.items()))
            lines.append(
                f"verify: FAILED: {self.findings_total} leak(s)" + (f" ({kinds}; by class: {classes})" if kinds else "")
                + f", {len(self.integrity)} integrity problem(s)"
            )
        return "\n".join(lines) + "\n"

