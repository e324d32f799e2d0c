"""Where a ``spark-run`` package is staged and committed: a local directory or a URI prefix.

Both kinds keep one rule: the tasks write only under ``OUT/.partial/``; the package's files are
placed when every task has succeeded, and the manifest is written last, so that whatever a
failure leaves has no manifest and is not a package.

- **A local directory** (also a shared mount: NFS, ``/dbfs``) is handled as ``run`` handles its
  own: the same preparation, renames into place, the manifest through a rename.
- **A URI** (``s3a://``, ``gs://``, ``abfss://``, ``hdfs://``, ``file://``). An object store has
  no rename and no directory: the staged files are copied into place (server-side, several at a
  time) and the staged copies deleted; the codebook and the signature are uploaded next, and the
  manifest last. One object appears whole or not at all, so the manifest is the commit marker:
  a reader that finds it finds every file it lists. A marker object ``OUT/.partial/unfinished``
  stands for the local ``.partial/`` directory: with it and without a manifest, the prefix is an
  unfinished run, which ``--force`` replaces.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import AnonymizerError, OutputError, UsageError, os_reason
from ..package.codebook import CODEBOOK_FILES
from ..package.manifest import MANIFEST_NAME
from ..package.signing import SIGNATURE_NAME
from . import storage
from .runner import PARTIAL_DIR, _prepare_out_dir, _remove_manifest, finish_package

UNFINISHED = "unfinished"  # the marker object of an unfinished run on a store


def target(out: Path | str):
    """The staging and commit of OUT: a ``UriTarget`` for a URI, else a ``LocalTarget``."""
    return UriTarget(out) if storage.is_uri(out) else LocalTarget(Path(out))


class LocalTarget:
    """A local output directory, as ``run`` writes one."""

    def __init__(self, out_dir: Path) -> None:
        self.out = out_dir
        self.staging: Path | None = None

    def prepare(self, force: bool) -> str:
        """Make the directory ready (``--force`` rules as for ``run``); the staging directory."""
        try:
            _prepare_out_dir(self.out, force)
            self.staging = self.out / PARTIAL_DIR / f"spark-{uuid.uuid4().hex}"
            (self.staging / "files").mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"{exc.filename or self.out}: cannot prepare the output directory ({os_reason(exc)})") from None
        return str(self.staging)

    def place(self, moves: list[tuple[str, str]]) -> None:
        """Move each (staged file, name in the package) into place."""
        for staged, relative in moves:
            final = self.out / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            Path(staged).replace(final)

    def finish(self, **package) -> dict:
        return finish_package(self.out, **package)

    def failed(self) -> None:
        _remove_manifest(self.out)

    def clean(self, completed: bool) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        if completed:
            shutil.rmtree(self.out / PARTIAL_DIR, ignore_errors=True)


@contextmanager
def _writing(what: str):
    """A store's failure as an ``OutputError`` naming WHAT and the kind of failure."""
    try:
        yield
    except AnonymizerError:
        raise
    except Exception as exc:  # noqa: BLE001  (each storage library has its own errors)
        reason = os_reason(exc) if isinstance(exc, OSError) else type(exc).__name__
        raise OutputError(f"{what}: cannot be written ({reason}); no manifest was written") from None


class UriTarget:
    """An output prefix on a store reached through fsspec (``anonymizer.io.storage``)."""

    def __init__(self, out: str) -> None:
        self.out = out.rstrip("/")
        self.partial = storage.join(self.out, PARTIAL_DIR)
        self.staging: str | None = None

    def prepare(self, force: bool) -> str:
        """As ``runner._prepare_out_dir`` for a prefix: empty, or with FORCE a package or an
        unfinished run, whose manifest goes first; the staging prefix."""
        with _writing(self.out):
            kind = storage.kind(self.out)
            if kind == "file":
                raise UsageError(f"{self.out}: exists and is not a directory")
            listed = [relative for _, relative in storage.files_under(self.out)] if kind == "directory" else []
            if listed:
                if not force:
                    raise UsageError(f"{self.out}: not empty; choose an empty prefix or pass --force to replace a previous package")
                if MANIFEST_NAME not in listed and not any(name.startswith(PARTIAL_DIR + "/") for name in listed):
                    raise UsageError(
                        f"{self.out}: not empty and holds neither a {MANIFEST_NAME} nor an unfinished run; "
                        "--force only replaces a previous package"
                    )
                storage.remove(storage.join(self.out, MANIFEST_NAME))  # first: never a package while replaced
            storage.write_bytes(storage.join(self.partial, UNFINISHED), b"")
            for relative in listed:
                if relative != MANIFEST_NAME and not relative.startswith(PARTIAL_DIR + "/"):
                    storage.remove(storage.join(self.out, *relative.split("/")))
            self.staging = storage.join(self.partial, f"spark-{uuid.uuid4().hex}")
        return self.staging

    def place(self, moves: list[tuple[str, str]]) -> None:
        with _writing(self.out):
            storage.place([(staged, storage.join(self.out, *relative.split("/"))) for staged, relative in moves])

    def finish(self, **package) -> dict:
        """The codebook and manifest made as ``run`` makes them, in a local directory, then
        uploaded: the codebook and the signature first, the manifest last."""
        with tempfile.TemporaryDirectory(prefix="anonymizer-package-") as local:
            manifest = finish_package(Path(local), **package)
            with _writing(self.out):
                for name in (*CODEBOOK_FILES, SIGNATURE_NAME, MANIFEST_NAME):
                    made = Path(local) / name
                    if made.is_file():
                        storage.write_bytes(storage.join(self.out, name), made.read_bytes())
        return manifest

    def failed(self) -> None:
        for name in (MANIFEST_NAME, SIGNATURE_NAME, *CODEBOOK_FILES):
            try:
                storage.remove(storage.join(self.out, name))
            except Exception:  # noqa: BLE001  (best effort: the error that stopped the run is the one reported)
                continue

    def clean(self, completed: bool) -> None:
        try:
            if self.staging is not None:
                storage.remove_tree(self.staging)
            if completed:
                storage.remove_tree(self.partial)
        except Exception:  # noqa: BLE001  (left-over staging files are not part of a package; the run's outcome stands)
            pass
