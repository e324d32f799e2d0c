"""The signature: ``manifest.sig`` checked against a public key, or noted as present or absent."""

from __future__ import annotations

from pathlib import Path

from ..package.signing import MISSING, SIGNATURE_NAME, VALID, verify_signature
from .report import IntegrityProblem, Report


def check_signature(directory: Path, public_key, report: Report) -> None:
    """Record in REPORT the state of DIRECTORY's signature; with PUBLIC_KEY, one that is missing or
    does not hold is an integrity problem."""
    if public_key is None:
        report.signature = "present, not checked (no --public-key)" if (directory / SIGNATURE_NAME).exists() else "unsigned"
        return
    status = verify_signature(directory, public_key)
    report.signature = status
    if status == MISSING:
        report.integrity.append(IntegrityProblem(SIGNATURE_NAME, "is missing: the manifest is not signed"))
    elif status != VALID:
        report.integrity.append(IntegrityProblem(SIGNATURE_NAME, "is not a valid signature of manifest.json under the public key"))
