"""The catalog snapshot: every hosted model models.dev lists, as records, in one gzip'd JSON file.

The file is ``{"format": 1, "date": "YYYY-MM-DD", "source": ..., "count": N, "records": [...]}``
with each record's ``facets()``. One ships inside the package (built by
``scripts/build_catalog_snapshot.py``); ``modelatlas catalog sync`` writes a newer one to the
home folder, which then wins. Writes are atomic: a failure never leaves a half-written file.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from modelatlas.catalog.records import ModelRecord
from modelatlas.config import settings
from modelatlas.errors import CatalogDataError

FORMAT = 1


@dataclass
class Snapshot:
    date: str
    source: str
    records: list[ModelRecord]
    path: Path

    @property
    def providers(self) -> set[str]:
        return {r.provider for r in self.records if r.provider}


class _SnapshotFile(BaseModel):
    format: int
    date: str
    source: str
    count: int
    records: list[ModelRecord]


def bundled_path() -> Path:
    """The snapshot shipped with the package."""
    return Path(__file__).parent / "data" / "snapshot.json.gz"


def user_path() -> Path:
    """The snapshot `modelatlas catalog sync` writes; it wins over the bundled one."""
    return settings().home / "catalog" / "snapshot.json.gz"


def current_path() -> Path:
    user = user_path()
    return user if user.is_file() else bundled_path()


def load_snapshot(path: str | Path | None = None) -> Snapshot:
    """The snapshot at ``path``; by default the user's one when present, else the bundled one."""
    path = Path(path) if path is not None else current_path()
    try:
        raw = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise CatalogDataError(
            f"The catalog snapshot {path} is missing.",
            hint="Run `modelatlas catalog sync` (or scripts/build_catalog_snapshot.py in a checkout).",
        ) from None
    except (OSError, EOFError) as exc:
        raise _corrupt(path, str(exc)) from None
    try:
        data = _SnapshotFile.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise _corrupt(path, f"{where}: {err['msg']}") from None
    if data.format != FORMAT:
        raise _corrupt(path, f"format {data.format}, but this version of modelatlas reads format {FORMAT}")
    return Snapshot(date=data.date, source=data.source, records=data.records, path=path)


def peek(path: str | Path) -> dict:
    """A snapshot file's header (format, date, source, count) without building records."""
    data = json.loads(gzip.decompress(Path(path).read_bytes()))
    return {k: data.get(k) for k in ("format", "date", "source", "count")}


def write_snapshot(path: str | Path, records: Iterable[ModelRecord], date: str, source: str) -> Path:
    """Write the snapshot to ``path`` atomically (a temporary file, then ``os.replace``)."""
    path = Path(path)
    facets = [r.facets() for r in records]
    doc = {"format": FORMAT, "date": date, "source": source, "count": len(facets), "records": facets}
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    settings().make_dirs(path.parent)  # the home, if it is made here, is made private
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
                gz.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the catalog is public data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _corrupt(path: Path, reason: str) -> CatalogDataError:
    fix = ", or delete it to use the bundled catalog." if path == user_path() else " or reinstall modelatlas."
    hint = "Run `modelatlas catalog sync` to replace it" + fix
    return CatalogDataError(f"The catalog snapshot {path} cannot be read: {reason}.", hint=hint)
