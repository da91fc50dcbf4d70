"""The catalog: every source merged into one list of records, looked up by id.

Sources, later ones winning on the same id: the models.dev snapshot (hosted models), the
bundled local models, models found on this machine's disks, and the models the user added
(endpoints, files, YAML). Whether a model is runnable is decided here, from this machine and
this environment, never stored in the snapshot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import UnknownModelError

log = logging.getLogger(__name__)


@dataclass
class Catalog:
    records: list[ModelRecord]
    date: str | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)

    @cached_property
    def by_id(self) -> dict[str, ModelRecord]:
        return {r.id: r for r in self.records}

    @cached_property
    def model_keys(self) -> dict[str, str]:
        """Each record's id -> the model it offers (see catalog.offers), worked out once."""
        from modelatlas.catalog.offers import model_keys

        return model_keys(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def get(self, model_id: str) -> ModelRecord:
        record = self.by_id.get(model_id)
        if record is None:
            raise UnknownModelError(model_id, self.by_id)
        return record

    def providers(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.records:
            provider = r.provider or r.id.split("/", 1)[0]  # the record sets it from the id
            counts[provider] = counts.get(provider, 0) + 1
        return dict(sorted(counts.items()))


_cache: dict[tuple[object, ...], Catalog] = {}


def load_catalog(*, scan: bool = True, refresh: bool = False) -> Catalog:
    """The merged catalog, cached in this process until a source changes."""
    key = _cache_key(scan)
    if refresh or key not in _cache:
        _cache.clear()
        _cache[key] = _assemble(scan)
    return _cache[key]


def forget() -> None:
    """Drop the in-process cache (after a sync, an add or a remove)."""
    _cache.clear()


def _cache_key(scan: bool) -> tuple[object, ...]:
    """What the catalog is built from, cheaply: the snapshot file's and the scanned folders'
    stat, and the registered models' rows. Another process's `catalog add` or `catalog sync`
    changes the key, so a running studio sees it on its next page without a restart. The
    registered rows are read (one small query, about a millisecond) rather than the database
    file stat'ed, because the database changes on every call and vote the studio records."""
    from modelatlas.catalog import discover, snapshot
    from modelatlas.config import settings

    conf = settings()
    folders = tuple(_stamp(p) for p in discover.default_paths()) if scan else ()
    return (
        str(conf.home),
        conf.database_url,
        scan,
        os.environ.get("MODELATLAS_MODEL_PATHS"),
        _stamp(snapshot.current_path()),
        folders,
        _registered_stamp(),
    )


def _stamp(path: Path) -> tuple[str | int, ...]:
    """A file's or folder's path, modification time and size; the path alone when it is missing."""
    try:
        info = path.stat()
    except OSError:
        return (str(path),)
    return (str(path), info.st_mtime_ns, info.st_size)


def _registered_stamp() -> str:
    """A digest of the registered models' rows: it changes when one is added, replaced or removed."""
    from modelatlas import store

    rows = json.dumps(store.list_registered(), sort_keys=True, default=str)
    return hashlib.sha256(rows.encode()).hexdigest()


def _assemble(scan: bool) -> Catalog:
    from modelatlas.catalog import discover, snapshot
    from modelatlas.catalog.bundled import bundled_records
    from modelatlas.catalog.image_models import hosted_images
    from modelatlas.catalog.resolve import registered_records
    from modelatlas.catalog.speech import hosted_speech

    snap = snapshot.load_snapshot()
    merged: dict[str, ModelRecord] = {}
    for record in snap.records:
        merged[record.id] = _with_runnable(record)
    for record in hosted_speech(merged):  # OpenAI's speech models, which models.dev lacks
        merged[record.id] = _with_runnable(record)
    for record in hosted_images(merged):  # OpenAI's image models, priced by the picture
        merged[record.id] = _with_runnable(record)
    for record in discover.enrich_bundled(bundled_records()):
        merged[record.id] = record
    notes: list[str] = []
    if scan:
        for record in discover.scan():
            merged.setdefault(record.id, record)
    for record in registered_records():
        merged[record.id] = record.model_copy(update={"runnable": True})
    return Catalog(list(merged.values()), date=snap.date, source=snap.source, notes=notes)


def _with_runnable(record: ModelRecord) -> ModelRecord:
    """A hosted record is runnable when a backend serves it and the environment has what that
    backend declares a call needs (its key; for Azure, an endpoint unless the record names one)."""
    from modelatlas.backends.declared import facts

    if record.backend is None:
        return record
    ready = not facts(record).missing_env()
    return record.model_copy(update={"runnable": ready}) if ready else record
