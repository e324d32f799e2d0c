"""The command line: parse arguments, call the library, print. Nothing here touches an event."""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path
from typing import Optional

import orjson
import typer

try:  # recent typer versions vendor click; older ones use the click package
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover (older typer)
    from click import ClickException

from .version import __version__
from .core.errors import AnonymizerError, PolicyError, Terminated, UsageError, os_reason
from .tools.inspect import format_inventory, inspect_inputs
from .core.ipmask import GeoIP
from .core.keys import KEY_ENV_VAR, check_scope, generate_key, load_key, write_key
from .core.operators.mask_ip import needs_country_database
from .core.scoping import PSEUDONYM_MODES
from .package.encrypt import decrypt_package
from .package.manifest import write_json_atomically
from .core.lowering import lower
from .core.plan import digest as plan_digest
from .core.plan import to_json as plan_json
from .core.policy import builtin_policies, load_policy
from .io.formats import default_policy
from .tools.policy_check import check_policy, format_check, verdict
from .tools.risk import DEFAULT_K, format_report as format_risk, risk_report
from .tables.commands import run_tables
from .io import storage
from .io.progress import ProgressLine
from .core.roster import load_roster
from .io.runner import run as run_package
from .core.selection import Selection
from .package.layout import LAYOUTS
from .package.signing import load_private_key, load_public_key, write_signing_key_pair
from .verify import verify_package

def _plain_help_pages() -> None:
    """Help pages that show each parameter's metavar (FILE, N) rather than a Python type name
    (``<bool>``, ``<list[Path]>``), and no braces around required arguments in the usage line,
    as recent typer versions print them. Older versions lack these hooks and are left as they are."""
    core = getattr(typer, "core", None)
    argument, option = getattr(core, "TyperArgument", None), getattr(core, "TyperOption", None)
    if argument is None or option is None or not hasattr(argument, "_usage_display_name"):
        return

    def usage_name(self) -> str:
        name = self.metavar or (self.name.upper() + ("..." if self.nargs != 1 else ""))
        return name if self.required else f"[{name}]"

    option_type = option.display_type_rich

    def shown_type(self, ctx) -> str | None:
        if self.metavar is not None:
            return self.metavar or None
        return None if getattr(self, "is_flag", False) else option_type(self, ctx)

    argument._usage_display_name = usage_name
    argument.display_type_rich = lambda self, ctx: None  # the metavar names it already
    option.display_type_rich = shown_type


_plain_help_pages()

app = typer.Typer(
    name="anonymizer",
    help="Pseudonymize Open edX tracking logs under a declarative policy, and prove nothing raw is left.",
    no_args_is_help=True,
    add_completion=False,
    # Rich tracebacks print local variables, which can hold raw log values: never use them.
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"anonymizer {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", metavar="", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Pseudonymize Open edX tracking logs under a declarative policy, and prove nothing raw is left."""


@app.command()
def keygen(
    out: Path = typer.Option(..., "--out", metavar="FILE", help="Where to write the new key (created with mode 0600; never overwritten); with --signing, the prefix of the key pair."),
    signing: bool = typer.Option(False, "--signing", metavar="", help="Write an Ed25519 key pair for signing manifests instead: OUT.key (private, 0600) and OUT.pub."),
) -> None:
    """Write a new random 32-byte pseudonymization key and print its key id (never the key)."""
    if signing:
        private_path, public_path, key_id = write_signing_key_pair(out)
        typer.echo(key_id)
        typer.echo(f"private key: {private_path} (sign with run --sign-key); public key: {public_path} (verify with --public-key)", err=True)
        return
    key = generate_key()
    write_key(key, out)
    typer.echo(key.key_id)


# Options that `run` and `spark-run` share: one definition, one help text.
_OUT = typer.Option(..., "--out", metavar="DIR", help="The package directory to write (must be empty unless --force).")
_POLICY = typer.Option("research", "--policy", metavar="POLICY", help=f"A policy file, or a built-in name ({', '.join(builtin_policies())}).")
_KEY_FILE = typer.Option(None, "--key-file", metavar="FILE", help=f"The key file (default: ${KEY_ENV_VAR}).")
_FORCE = typer.Option(False, "--force", metavar="", help="Replace a previous package in --out, or discard an interrupted run there instead of resuming it.")
_QUIET = typer.Option(False, "--quiet", "-q", metavar="", help="Print nothing but errors and warnings.")
_ROSTER = typer.Option(
    None, "--roster", metavar="FILE", help="A roster of known people (CSV/TSV, auth_user, auth_userprofile); repeat to join several files."
)
_SIGN_KEY = typer.Option(None, "--sign-key", metavar="FILE", help="An Ed25519 private key (keygen --signing): write manifest.sig beside the manifest.")
_MAX_REJECTED_FRACTION = typer.Option(
    None, "--max-rejected-fraction", min=0.0, max=1.0, metavar="F",
    help="Fail (exit 1, no manifest) when more than this share of an input's lines is rejected (0 to 1; default: no limit).",
)
_LEARN = typer.Option(
    True, "--learn/--no-learn", metavar="", help="Learn the people the inputs name in identifier fields and scrub them from text, URLs and keys (default: on)."
)
_COURSE = typer.Option(
    None, "--course", metavar="KEY", help="Write only events of this course (a course key or a glob of one, e.g. 'course-v1:MITx+*'); repeatable."
)
_ORG = typer.Option(None, "--org", metavar="ORG", help="Write only events of courses of this organization (or glob); repeatable.")
_SINCE = typer.Option(None, "--since", metavar="DATE", help="Write only events on or after this UTC day (YYYY-MM-DD), by their time.")
_UNTIL = typer.Option(None, "--until", metavar="DATE", help="Write only events on or before this UTC day (YYYY-MM-DD), by their time.")
_EVENT_TYPE = typer.Option(
    None, "--event-type", metavar="GLOB", help="Write only events of this type (a name or glob, e.g. 'edx.video.*'; implicit URL events: '/*'); repeatable."
)
_EXCLUDE_STAFF = typer.Option(
    False, "--exclude-staff", metavar="", help="Leave out the events of staff: needs a --roster with a staff or role column (is_staff, role ...) or an auth_user export."
)
_LAYOUT = typer.Option(
    "input", "--layout", metavar="LAYOUT", help=f"The package's files: {' or '.join(LAYOUTS)} (one file per course and UTC day, as the edX research data exchange)."
)
_SCOPE = typer.Option(
    None, "--scope", metavar="LABEL", help="Derive the run's key from the key file for this label (HKDF): packages of two labels share no pseudonym."
)
_PSEUDONYMS = typer.Option(
    "global", "--pseudonyms", metavar="global|per-course", help="per-course: a learner has another pseudonym in every course (default global: one across the package)."
)
_ENCRYPT_TO = typer.Option(
    None, "--encrypt-to", metavar="RECIPIENT", help="Also write OUT.tar.age, encrypted to this age (age1…) or SSH public key, or a file of them; repeatable."
)
_ENGINE = typer.Option(
    "auto", "--engine", metavar="ENGINE", help="auto (native when it is installed and runs the options given, else python), native or python: the same output bytes either way."
)
_RUN_POLICY = typer.Option(
    None, "--policy", metavar="POLICY",
    help=f"A policy file, or a built-in name ({', '.join(builtin_policies())}); default: research, or xapi-research for xAPI statements.",
)
_INPUT_FORMAT = typer.Option(
    "auto", "--input-format", metavar="FORMAT",
    help="auto (each file by its first JSON object), tracking-log or xapi (statements as JSON lines, gzipped, or ClickHouse JSONEachRow rows).",
)
_GEOIP = typer.Option(
    None, "--geoip", metavar="FILE", help="A GeoLite2 or DB-IP country database (.mmdb) for mask_ip's 'country' parameter."
)
_FORMAT = typer.Option(
    "jsonl", "--format", metavar="jsonl|parquet", help="The data files: gzip JSON lines (default), or Parquet with flat columns (needs the parquet extra)."
)


@app.command()
def run(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help="Tracking-log or xAPI files (plain or .gz) or directories of them."),
    out: Path = _OUT,
    policy: Optional[str] = _RUN_POLICY,
    key_file: Optional[Path] = _KEY_FILE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, metavar="N", help="Worker processes (default 0: all cores). The output is identical for any number."),
    progress: Optional[bool] = typer.Option(
        None, "--progress/--no-progress", metavar="", help="Show a progress line (default: only when stderr is a terminal)."
    ),
    roster: Optional[list[Path]] = _ROSTER,
    sign_key: Optional[Path] = _SIGN_KEY,
    max_rejected_fraction: Optional[float] = _MAX_REJECTED_FRACTION,
    learn: bool = _LEARN,
    course: Optional[list[str]] = _COURSE,
    org: Optional[list[str]] = _ORG,
    since: Optional[str] = _SINCE,
    until: Optional[str] = _UNTIL,
    event_type: Optional[list[str]] = _EVENT_TYPE,
    exclude_staff: bool = _EXCLUDE_STAFF,
    layout: str = _LAYOUT,
    scope: Optional[str] = _SCOPE,
    pseudonyms: str = _PSEUDONYMS,
    encrypt_to: Optional[list[str]] = _ENCRYPT_TO,
    geoip: Optional[Path] = _GEOIP,
    engine: str = _ENGINE,
    input_format: str = _INPUT_FORMAT,
    output_format: str = _FORMAT,
) -> None:
    """Anonymize INPUTS into a package directory: gzip JSON-lines (or Parquet) files and manifest.json."""
    if policy is None:
        policy = default_policy(inputs, input_format)
    loaded_policy, key, signer, people, selection, package_options = _load_run(
        policy, key_file, sign_key, roster, quiet, course, org, since, until, event_type, exclude_staff, layout, scope, pseudonyms, geoip,
    )
    show_progress = (sys.stderr.isatty() if progress is None else progress) and not quiet
    display = ProgressLine() if show_progress else None
    finished: list[str] = []

    def file_done(name: str, stats) -> None:
        finished.append(name)

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = run_package(
            inputs, out, loaded_policy, key, force=force, jobs=jobs or None, roster=people, sign_key=signer, learn=learn,
            on_file_done=file_done, on_progress=display, max_rejected_fraction=max_rejected_fraction,
            selection=selection, layout=layout, engine=engine, input_format=input_format, output_format=output_format,
            encrypt_to=encrypt_to or None, **package_options,
        )
    except KeyboardInterrupt as exc:
        if display is not None:
            display.finish()
        what, code = ("terminated (SIGTERM)", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        typer.echo(
            f"{what} after {len(finished)} finished file(s); {out} holds no manifest and is not a package. "
            "Run the same command again to resume, or with --force to start over",
            err=True,
        )
        raise typer.Exit(code) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if display is not None:
        display.finish()
    for warning in result.manifest.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    if not quiet:
        if result.resumed:
            typer.echo(f"resumed an interrupted run: kept {result.resumed} of {len(result.manifest['files'])} finished file(s), made the rest")
        counts = result.manifest["counts"]
        dropped = sum(counts["dropped"].values())
        rejected = sum(counts["rejected"].values())
        not_selected = f", {counts['not_selected']} not selected" if selection is not None else ""
        typer.echo(
            f"wrote {len(result.manifest['files'])} file(s) to {out}: "
            f"{counts['read']} lines read, {counts['written']} written, {dropped} dropped by policy, {rejected} rejected{not_selected}"
        )
        key_id = result.manifest["key_id"]
        typer.echo(f"policy {loaded_policy.name} (sha256 {loaded_policy.sha256[:12]}…), key id {key_id}" + (f" (scope {scope})" if scope else ""))
        typer.echo(f"manifest: {Path(out) / 'manifest.json'}")
        if signer is not None:
            typer.echo(f"signature: {Path(out) / 'manifest.sig'}")
        if result.encrypted is not None:
            typer.echo(f"encrypted archive: {result.encrypted.archive} (sha256 {result.encrypted.sha256}, in {result.encrypted.sha256_file.name})")


def _load_run(policy, key_file, sign_key, roster, quiet, course, org, since, until, event_type, exclude_staff, layout, scope, pseudonyms, geoip):
    """Everything a run needs read and checked before it starts (`run` and `spark-run`): the
    policy, the key, the signing key, the roster, the selection and the package options."""
    if layout not in LAYOUTS:
        raise UsageError(f"--layout: expected one of {', '.join(LAYOUTS)}")
    if exclude_staff and not roster:
        raise UsageError("--exclude-staff needs a roster with a staff or role column, or an auth_user export: pass it with --roster")
    loaded_policy = load_policy(policy)
    key = load_key(key_file, warn=lambda message: typer.echo(f"warning: {message}", err=True))
    signer = load_private_key(sign_key) if sign_key is not None else None  # before the run, not after it
    package_options = _package_options(loaded_policy, scope, pseudonyms, geoip, quiet)
    people = None
    if roster:
        people, roster_report = load_roster(roster)
        if not quiet:
            for line in roster_report.describe():
                typer.echo(line, err=True)
    selection = Selection.parse(
        courses=course, orgs=org, since=since, until=until, event_types=event_type, exclude_staff=exclude_staff, roster=people
    )
    return loaded_policy, key, signer, people, selection, package_options


def _package_options(policy, scope: str | None, pseudonyms: str, geoip: Path | None, quiet: bool) -> dict:
    """The run options of a research package (scope, per-course pseudonyms, country database),
    checked before the run starts."""
    if pseudonyms not in PSEUDONYM_MODES:
        raise UsageError(f"--pseudonyms: expected one of {', '.join(PSEUDONYM_MODES)}")
    if scope is not None:
        check_scope(scope)
    database = GeoIP.load(geoip) if geoip is not None else None
    wants_country = needs_country_database(lower(policy))
    if wants_country and database is None:
        raise UsageError(f"policy {policy.name}: mask_ip asks for the country ('country: replace' or 'add'); pass --geoip FILE")
    if database is not None and not wants_country and not quiet:
        typer.echo("warning: --geoip is given, but no mask_ip rule of the policy asks for the country ('country: replace' or 'add')", err=True)
    return {"scope": scope, "pseudonyms": pseudonyms, "geoip": database}


@app.command()
def decrypt(
    archive: Path = typer.Argument(..., metavar="ARCHIVE", help="The encrypted package (PACKAGE.tar.age, from run --encrypt-to)."),
    identity: Path = typer.Option(..., "--identity", "-i", metavar="FILE", help="An age identity file (AGE-SECRET-KEY-1…) or an unencrypted OpenSSH private key."),
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Where to unpack the package (a new or empty directory)."),
    public_key: Optional[Path] = typer.Option(
        None, "--public-key", metavar="FILE", help="The sender's Ed25519 public key (PREFIX.pub): ARCHIVE.sig must sign ARCHIVE.sha256, checked before decrypting."
    ),
) -> None:
    """Check ARCHIVE against ARCHIVE.sha256 (and its signature), decrypt it and unpack the package into DIR."""
    key = load_public_key(public_key) if public_key is not None else None
    files, checked = decrypt_package(archive, identity, out, key)
    typer.echo(f"{archive}: {checked}; unpacked {files} file(s) into {out}")
    typer.echo(f"check it with: anonymizer verify {out}" + (f" --public-key {public_key}" if public_key is not None else ""))


def _terminate(signum, frame) -> None:
    """SIGTERM stops a run as Ctrl-C does: the same clean-up, then exit 143."""
    raise Terminated()


def _write_report(report: dict, destination: Path) -> None:
    """Write a JSON report to DESTINATION, or to standard output when it is ``-``."""
    if str(destination) == "-":
        typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        try:
            write_json_atomically(Path(destination), report)
        except OSError as exc:
            raise UsageError(f"{destination}: cannot write the report ({exc.strerror})") from None


policy_app = typer.Typer(help="Check a policy before a release, or print the plan it compiles to.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("check")
def policy_check(
    policy: str = typer.Argument(..., metavar="POLICY", help=f"A policy file, or a built-in name ({', '.join(builtin_policies())})."),
    more_samples: Optional[list[Path]] = typer.Argument(
        None, metavar="SAMPLE...", help="Further sample files after --sample, so that '--sample logs/*.gz' works."
    ),
    sample: Optional[list[Path]] = typer.Option(None, "--sample", metavar="FILE", help="Tracking-log files (plain or .gz) or directories to check the policy against."),
    strict: bool = typer.Option(False, "--strict", metavar="", help="Fail (exit 1) when the sample holds an event type that no rule handles, or a kept field that held free text."),
    strict_fields: bool = typer.Option(False, "--strict-fields", metavar="", help="Fail (exit 1) when the sample holds a field that no rule names."),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Also write the report as JSON to this file ('-': standard output, instead of the text)."),
) -> None:
    """Validate POLICY; with a sample, list the event types and fields it would drop and the rules that never matched."""
    if more_samples and not sample:
        raise UsageError(f"{more_samples[0]}: unexpected argument; give sample files after --sample")
    samples = list(sample or []) + list(more_samples or [])
    if (strict or strict_fields) and not samples:
        raise UsageError("--strict and --strict-fields check a sample: pass --sample FILE...")
    try:
        loaded = load_policy(policy)
        check = check_policy(loaded, samples)
    except PolicyError as exc:
        if json_out is not None:
            _write_report({"format_version": 1, "policy": {"source": policy, "valid": False, "error": str(exc)}, "result": {"passed": False}}, json_out)
        raise
    passed, _ = verdict(check, strict=strict, strict_fields=strict_fields)
    if json_out is not None:
        _write_report(check.as_dict(strict=strict, strict_fields=strict_fields), json_out)
    if json_out is None or str(json_out) != "-":
        typer.echo(format_check(check, strict=strict, strict_fields=strict_fields), nl=False)
    if not passed:
        raise typer.Exit(1)


@policy_app.command("plan")
def policy_plan(
    policy: str = typer.Option("research", "--policy", metavar="POLICY", help=f"A policy file, or a built-in name ({', '.join(builtin_policies())})."),
    digest: bool = typer.Option(False, "--digest", metavar="", help="Print only the sha256 of the plan's JSON: equal digests, equal behaviour."),
) -> None:
    """Print the plan POLICY lowers to, as JSON with sorted keys (see docs/plan.md), for an engine, a diff or a hash."""
    plan = lower(load_policy(policy))
    if digest:
        typer.echo(plan_digest(plan))
    else:
        sys.stdout.buffer.write(plan_json(plan))
        sys.stdout.buffer.flush()


@app.command("inspect")
def inspect_logs(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help="Tracking-log files (plain or .gz) or directories of them."),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Also write the report as JSON to this file ('-': standard output, instead of the text)."),
    fields: bool = typer.Option(True, "--fields/--no-fields", metavar="", help="List the field paths of every event type and the kinds of value they hold."),
) -> None:
    """What INPUTS hold, never a value: event types, encodings of event, field paths with kinds of value, rejected lines."""
    inventory = inspect_inputs(inputs)
    if json_out is not None:
        _write_report(inventory.as_dict(), json_out)
    if json_out is None or str(json_out) != "-":
        typer.echo(format_inventory(inventory, fields=fields), nl=False)


@app.command("verify")
def verify(
    package: Path = typer.Argument(..., metavar="PACKAGE", help="The package directory (the one holding manifest.json)."),
    more_inputs: Optional[list[Path]] = typer.Argument(
        None, metavar="INPUT...", help="Further raw inputs after --against, so that '--against logs/*.gz' works."
    ),
    against: Optional[list[Path]] = typer.Option(
        None, "--against", metavar="FILE", help="The raw tracking logs the package was made from (files or directories): every identifier in them is searched for."
    ),
    roster: Optional[list[Path]] = typer.Option(None, "--roster", metavar="FILE", help="A roster of known people (CSV/TSV with a header naming id, username, email, name); repeatable."),
    public_key: Optional[Path] = typer.Option(None, "--public-key", metavar="FILE", help="The Ed25519 public key (PREFIX.pub): manifest.sig must be present and valid."),
    require_signature: bool = typer.Option(False, "--require-signature", metavar="", help="Fail an unsigned package (needs --public-key, which implies it)."),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Also write the report as JSON to this file, outside the package ('-': standard output, instead of the text)."),
    max_findings: int = typer.Option(1000, "--max-findings", min=0, metavar="N", help="List at most this many findings (all are counted)."),
    policy: Optional[str] = typer.Option(
        None, "--policy", metavar="NAME|FILE", help="The policy whose identity fields are checked (default: the one the manifest names, else research)."
    ),
    engine: str = typer.Option(
        "auto", "--engine", metavar="ENGINE",
        help="auto (the native engine's line filter when it is installed, else python), native or python: the same findings either way.",
    ),
) -> None:
    """Check PACKAGE against its manifest and signature, and search every byte of it for raw identifiers.

    Exit 0 when clean, 1 when a leak or an integrity problem is found, 2 for usage errors.
    """
    if more_inputs and not against:
        raise UsageError(f"{more_inputs[0]}: unexpected argument; give raw inputs after --against")
    inputs = list(against or []) + list(more_inputs or [])
    key = load_public_key(public_key) if public_key is not None else None
    report = verify_package(
        package, against=inputs, roster=roster or [], public_key=key, require_signature=require_signature, max_listed=max_findings,
        policy=policy, engine=engine,
    )
    if json_out is not None:
        _write_report(report.as_dict(), json_out)
    if json_out is None or str(json_out) != "-":
        typer.echo(report.describe(), nl=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("risk")
def risk(
    package: Path = typer.Argument(..., metavar="PACKAGE", help="The package directory (the one holding manifest.json)."),
    k: int = typer.Option(DEFAULT_K, "--k", min=2, metavar="K", help=f"The smallest group a learner may be in (default {DEFAULT_K})."),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Also write the report as JSON to this file ('-': standard output, instead of the text)."),
    tables: Optional[Path] = typer.Option(
        None, "--tables", metavar="DIR", help="A tables package (anonymizer tables) made with the same key: adds year band, gender, education and country."
    ),
) -> None:
    """k-anonymity of PACKAGE per course: learners in groups smaller than K for each combination of the
    quasi-identifiers present (agent, IP prefix, language, enrollment mode, courses; with --tables the
    demographics), and what coarser choice would fix it. Counts only, never a value."""
    report = risk_report(package, k, tables=tables)
    if json_out is not None:
        _write_report(report, json_out)
    if json_out is None or str(json_out) != "-":
        typer.echo(format_risk(report), nl=False)


@app.command("tables")
def tables_command(
    inputs: list[Path] = typer.Argument(..., metavar="EXPORT...", help="Table exports (TSV, \\x01-separated or CSV, plain or .gz) or directories of them."),
    out: Path = _OUT,
    policy: str = typer.Option(
        "tables-research", "--policy", metavar="POLICY", help="A table policy file, or a built-in name (tables-research)."
    ),
    key_file: Optional[Path] = _KEY_FILE,
    roster: Optional[list[Path]] = _ROSTER,
    scope: Optional[str] = _SCOPE,
    sign_key: Optional[Path] = _SIGN_KEY,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> None:
    """Anonymize the platform's tables (auth_user, auth_userprofile, enrollments, studentmodule,
    certificates, user-id maps) into CSV files with the events' pseudonyms, a manifest and a codebook."""
    for line in run_tables(inputs, out, policy, key_file, roster, scope, sign_key, force, quiet, warn=lambda m: typer.echo(f"warning: {m}", err=True)):
        typer.echo(line, err=True)

@app.command("spark-run")
def spark_run_command(
    # Strings, not paths: a URI (s3a://bucket/logs) would lose a slash as a Path.
    inputs: list[str] = typer.Argument(..., metavar="INPUT...", help="Tracking-log files (plain or .gz) or directories of them: paths every executor sees, or URIs (s3a://, gs://, abfss://, hdfs://)."),
    out: str = typer.Option(..., "--out", metavar="DIR", help="The package directory or URI prefix to write (must be empty unless --force)."),
    policy: str = _POLICY,
    key_file: Optional[Path] = _KEY_FILE,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
    roster: Optional[list[Path]] = _ROSTER,
    sign_key: Optional[Path] = _SIGN_KEY,
    max_rejected_fraction: Optional[float] = _MAX_REJECTED_FRACTION,
    learn: bool = _LEARN,
    course: Optional[list[str]] = _COURSE,
    org: Optional[list[str]] = _ORG,
    since: Optional[str] = _SINCE,
    until: Optional[str] = _UNTIL,
    event_type: Optional[list[str]] = _EVENT_TYPE,
    exclude_staff: bool = _EXCLUDE_STAFF,
    layout: str = _LAYOUT,
    scope: Optional[str] = _SCOPE,
    pseudonyms: str = _PSEUDONYMS,
    encrypt_to: Optional[list[str]] = _ENCRYPT_TO,
    geoip: Optional[Path] = _GEOIP,
    engine: str = _ENGINE,
    output_format: str = _FORMAT,
    master: Optional[str] = typer.Option(
        None, "--master", metavar="URL", help="The Spark master (default: the session spark-submit made, else local[*])."
    ),
    split_mb: int = typer.Option(128, "--split-mb", min=4, metavar="MB", help="Cut plain input files into splits of about this size (a multiple of 4 MB); gzip files are one split each."),
) -> None:
    """Anonymize INPUTS on Apache Spark: the same package as `run`, log files byte for byte."""
    if output_format != "jsonl":  # the Spark driver writes gzip JSON lines only
        raise UsageError("spark-run writes gzip JSON lines only (--format jsonl); for Parquet, use `anonymizer run --format parquet`")
    loaded_policy, key, signer, people, selection, package_options = _load_run(
        policy, key_file, sign_key, roster, quiet, course, org, since, until, event_type, exclude_staff, layout, scope, pseudonyms, geoip,
    )
    storage.require([*inputs, out])  # a URI's missing library fails here, before Spark starts
    try:
        from .io.spark import default_session, spark_run  # noqa: PLC0415  (pyspark is an optional extra)

        session = default_session(master)
    except ImportError:
        raise UsageError("spark-run needs pyspark: install the spark extra (pip install 'edx-log-anonymizer[spark]')") from None
    result = spark_run(
        session, inputs, out, loaded_policy, key, force=force, roster=people, sign_key=signer, learn=learn,
        max_rejected_fraction=max_rejected_fraction, selection=selection, layout=layout, encrypt_to=encrypt_to or None,
        engine=engine, split_bytes=split_mb << 20, **package_options,
    )
    for warning in result.manifest.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    if not quiet:
        counts = result.manifest["counts"]
        typer.echo(
            f"wrote {len(result.manifest['files'])} file(s) to {out}: {counts['read']} lines read, {counts['written']} written, "
            f"{sum(counts['dropped'].values())} dropped by policy, {sum(counts['rejected'].values())} rejected"
        )
        typer.echo(f"manifest: {out.rstrip('/')}/manifest.json")


def main() -> None:
    """Entry point: run the app and turn errors into messages that never quote a value."""
    try:
        # Without standalone mode, a command's typer.Exit comes back as a return value.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except AnonymizerError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt as exc:
        typer.echo("interrupted: the package was not completed (no manifest was written)", err=True)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    except OSError as exc:
        # An ordinary fault of the system (permission denied, no space left): the user's to fix.
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{os_reason(exc)}", err=True)
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, ClickException):
            exc.show()
            sys.exit(2)
        # An unexpected error: name where it happened, never its message, which may hold a value.
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        typer.echo(f"internal error: {type(exc).__name__}{where} (details withheld: they may contain log data)", err=True)
        sys.exit(70)


if __name__ == "__main__":
    main()
