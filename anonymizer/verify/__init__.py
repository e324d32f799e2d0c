"""Verifying a package: its integrity against the manifest and signature, and a scan for leaks.

One module per concern:

- ``integrity``: every file the manifest lists exists with its size and sha256, and no other
  file is in the package; each file is read (gzip decompressed) while it is hashed;
- ``signature``: ``manifest.sig`` against a public key;
- ``harvest``: the identifiers of the raw inputs (``--against``) and of rosters, from the fields
  that the package's policy says carry an identity (the plan's ``identities``) and a fixed
  list of the platform's fields;
- ``forms``: the forms an identifier takes in output (encodings, disguises, normalized text);
- ``scan``: the search of every byte of the package for those identifiers, and the detectors;
- ``classify``: where in a line a finding is, and its leak class;
- ``report``: the findings and integrity problems, as text and JSON;
- ``package``: the entry point, ``verify_package``.

Nothing found is ever printed: a finding names the file, line, JSON path and kind, where the
identifier came from (``tracking.log:12``), and a fingerprint keyed with a random key made for
this verification, which groups the findings of one value within a report and means nothing
outside it.
"""

from .classify import LEAK_CLASSES, leak_class
from .forms import normalize_text, searched_as_substring
from .harvest import Identifier, IdentifierFields, Identifiers, harvest_inputs, harvest_roster, identifier_fields
from .package import verify_package
from .report import Finding, IntegrityProblem, Report
from .scan import Scanner

__all__ = [
    "LEAK_CLASSES",
    "Finding",
    "Identifier",
    "IdentifierFields",
    "Identifiers",
    "IntegrityProblem",
    "Report",
    "Scanner",
    "harvest_inputs",
    "harvest_roster",
    "identifier_fields",
    "leak_class",
    "normalize_text",
    "searched_as_substring",
    "verify_package",
]
