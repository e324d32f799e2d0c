"""The command line: parse arguments, call the library, print. Nothing here touches an event."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .errors import AnonymizerError
from .keys import KEY_ENV_VAR, generate_key, load_key, write_key
from .policy import builtin_policies, load_policy
from .runner import run as run_package

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
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Pseudonymize Open edX tracking logs under a declarative policy, and prove nothing raw is left."""


@app.command()
def keygen(
    out: Path = typer.Option(..., "--out", help="Where to write the new key (created with mode 0600; never overwritten)."),
) -> None:
    """Write a new random 32-byte pseudonymization key and print its key id (never the key)."""
    key = generate_key()
    write_key(key, out)
    typer.echo(key.key_id)


@app.command()
def run(
    inputs: list[Path] = typer.Argument(..., help="Tracking-log files (plain or .gz) or directories of them."),
    out: Path = typer.Option(..., "--out", help="The package directory to write (must be empty unless --force)."),
    policy: str = typer.Option("research", "--policy", help=f"A policy file, or a built-in name ({', '.join(builtin_policies())})."),
    key_file: Optional[Path] = typer.Option(None, "--key-file", help=f"The key file (default: ${KEY_ENV_VAR})."),
    force: bool = typer.Option(False, "--force", help="Replace a previous package in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Anonymize INPUTS into a package directory: gzip JSON-lines files and manifest.json."""
    loaded_policy = load_policy(policy)
    key = load_key(key_file)

    def progress(name: str, stats) -> None:
        if not quiet:
            typer.echo(f"  {name}: {stats.read} lines read, {stats.written} written", err=True)

    result = run_package(inputs, out, loaded_policy, key, force=force, on_file_done=progress)
    if not quiet:
        counts = result.manifest["counts"]
        dropped = sum(counts["dropped"].values())
        rejected = sum(counts["rejected"].values())
        typer.echo(
            f"wrote {len(result.manifest['files'])} file(s) to {out}: "
            f"{counts['read']} lines read, {counts['written']} written, {dropped} dropped by policy, {rejected} rejected"
        )
        typer.echo(f"policy {loaded_policy.name} (sha256 {loaded_policy.sha256[:12]}…), key id {key.key_id}")
        typer.echo(f"manifest: {Path(out) / 'manifest.json'}")


def main() -> None:
    """Entry point: run the app and turn errors into messages that never quote a value."""
    try:
        app(standalone_mode=False)
    except AnonymizerError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted: the package was not completed (no manifest was written)", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        # An unexpected error: name where it happened, never its message, which may hold a value.
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        typer.echo(f"internal error: {type(exc).__name__}{where} (details withheld: they may contain log data)", err=True)
        sys.exit(70)


if __name__ == "__main__":
    main()
