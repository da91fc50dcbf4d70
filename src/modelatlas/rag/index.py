"""Build and update a knowledge base: read, chunk, embed and store documents, incrementally.

How a run stays safe (nothing half-written, the previous index usable after any failure):

1. Everything that can fail early does, before any write: the paths, the settings, loading the
   embedder (one probe embedding), reading and chunking every new or changed file.
2. New chunks are added next to the old ones; their ids carry the file's content hash, so the
   old and new versions of a file never collide. A rebuild writes into a new table instead.
3. The manifest (the file hashes and settings) is then replaced atomically. It is the commit
   point: search shows only rows whose (source, hash) the manifest lists, so rows of a run that
   died before this step are invisible.
4. Only after that are the old versions' rows (and a rebuilt KB's old table) deleted. Rows left
   by a failed run are deleted at the start of the next one (the store then holds more rows than
   the manifest counts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path

from modelatlas.errors import RagError
from modelatlas.rag.aio import run_sync
from modelatlas.rag.manifest import FileEntry, Manifest, check_name, load_manifest, locked, now, save_manifest
from modelatlas.rag.readers import Found, binary_reason, find_documents
from modelatlas.rag.stores import STORES, Store, generation_of, open_store, table_name
from modelatlas.rag.types import IndexReport, SkippedFile
from modelatlas.rag.writing import Changes, plan_changes, read_chunks, store_chunks

DEFAULT_EMBEDDER = "local/all-minilm-l6-v2"
Progress = Callable[[int, int], None]  # (chunks embedded so far, chunks to embed)


@dataclass(frozen=True)
class KbSettings:
    chunk_tokens: int = 200
    overlap: int = 40
    embedder: str = DEFAULT_EMBEDDER
    store: str = "lancedb"
    url: str | None = None

    def describe(self, names: list[str]) -> str:
        return ", ".join(f"{name}={getattr(self, name)}" for name in names)


def index(
    paths: Iterable[str | Path],
    name: str,
    *,
    chunk_tokens: int | None = None,
    overlap: int | None = None,
    embedder: str | None = None,
    store: str | None = None,
    url: str | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IndexReport:
    """Index ``paths`` into the knowledge base ``name`` (see :func:`aindex`)."""
    return run_sync(
        aindex(
            paths,
            name,
            chunk_tokens=chunk_tokens,
            overlap=overlap,
            embedder=embedder,
            store=store,
            url=url,
            rebuild=rebuild,
            progress=progress,
        )
    )


async def aindex(
    paths: Iterable[str | Path],
    name: str,
    *,
    chunk_tokens: int | None = None,
    overlap: int | None = None,
    embedder: str | None = None,
    store: str | None = None,
    url: str | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IndexReport:
    """Make the knowledge base ``name`` mirror the documents under ``paths``.

    Settings left as None keep the knowledge base's own (a new one gets 200-token chunks with a
    40-token overlap, all-MiniLM-L6-v2 and LanceDB). Changing the embedder, the chunking or the
    store of an existing knowledge base needs ``rebuild``. Unchanged files are not re-embedded;
    files no longer under ``paths`` are removed.
    """
    from modelatlas.rag.search import embedding_model, forget

    check_name(name)
    # Reading files and stores blocks, so each blocking step runs in a worker thread and the
    # caller's event loop stays free (the embedder is awaited on the loop itself).
    found = await asyncio.to_thread(find_documents, paths)
    asked = dict(chunk_tokens=chunk_tokens, overlap=overlap, embedder=embedder, store=store, url=url)
    wanted = settings_for(name, await asyncio.to_thread(load_manifest, name), asked, rebuild)
    async with embedding_model(wanted.embedder) as model:
        dimensions = await _probe(model, wanted)
        # This process's open copy (Qdrant's local mode allows one client per folder).
        await asyncio.to_thread(forget, name)
        with locked(name):  # a non-blocking lock: a second run fails at once
            old = await asyncio.to_thread(load_manifest, name)  # again, now that no other run can change it
            wanted = settings_for(name, old, asked, rebuild)
            return await _update(name, found, wanted, old, rebuild, model, dimensions, progress)


def settings_for(name: str, old: Manifest | None, asked: dict, rebuild: bool) -> KbSettings:
    """The settings of this run; an existing KB's, unless asked otherwise (which needs rebuild)."""
    if asked.get("url") and not asked.get("store"):
        asked = {**asked, "store": "qdrant"}
    base = (
        KbSettings(old.chunk_tokens, old.overlap, old.embedder, old.store, old.url) if old else KbSettings()
    )
    wanted = replace(base, **{k: v for k, v in asked.items() if v is not None})
    if wanted.store not in STORES:
        raise RagError(f"Unknown store {wanted.store!r}.", hint=f"Use one of: {', '.join(STORES)}.")
    if wanted.url and wanted.store != "qdrant":
        raise RagError("--url is for Qdrant servers.", hint="Add --store qdrant, or leave out --url.")
    changed = [f.name for f in fields(KbSettings) if getattr(wanted, f.name) != getattr(base, f.name)]
    if old is not None and not rebuild and changed:
        raise RagError(
            f"The knowledge base {name!r} was built with {base.describe(changed)}; "
            f"this run asks for {wanted.describe(changed)}.",
            hint="Index into a new --name, or add --rebuild to re-embed everything with the new settings.",
        )
    return wanted


async def _probe(model, wanted: KbSettings) -> int:
    """The embedder's dimensions, from one embedding; also checks that chunks fit its window."""
    from modelatlas.rag.chunking import check_settings

    check_settings(wanted.chunk_tokens, wanted.overlap)
    window = model.context_length
    if window and wanted.chunk_tokens > window:
        raise RagError(
            f"{model.id} reads at most {window} tokens, so {wanted.chunk_tokens}-token chunks would be cut.",
            hint=f"Use --chunk-tokens {min(200, window)} or less.",
        )
    vectors = (await model.embed(["dimension probe"])).vectors
    if not vectors or not vectors[0]:
        raise RagError(f"{model.id} returned no embedding.", hint="Pick an embedding model with --embedder.")
    return len(vectors[0])


async def _update(name, found: Found, wanted: KbSettings, old, rebuild, model, dimensions, progress):
    fresh = old is None or rebuild
    changes, binary, chunks = await asyncio.to_thread(_read, found, wanted, old, rebuild, model.count_tokens)
    generation = generation_of(old.table) + 1 if old else 1
    table = table_name(name, generation, wanted.url) if fresh else old.table
    store = await asyncio.to_thread(_open, wanted, name, table, dimensions, old if not fresh else None)
    try:
        await store_chunks(model, store, chunks, progress)
        manifest = _manifest(name, wanted, table, dimensions, old, changes, chunks)
        await asyncio.to_thread(_commit, store, manifest, changes)
    finally:
        await asyncio.to_thread(store.close)
    if old is not None and rebuild:
        await asyncio.to_thread(_drop_old_table, name, old, manifest)
    return IndexReport(
        added=len(changes.added),
        updated=len(changes.updated),
        removed=len(changes.removed),
        unchanged=len(changes.unchanged),
        chunks=manifest.chunks,
        skipped=found.skipped,
        binary=tuple(binary),
    )


def _read(found: Found, wanted: KbSettings, old, rebuild: bool, count) -> tuple[Changes, list, list]:
    """What changed, without the binary files, and the chunks to embed (blocking: file reads)."""
    changes = plan_changes(found.files, old, rebuild)
    binary = drop_binary(changes)
    if not changes.hashes:
        raise RagError(
            f"No text documents to index: {_listing(binary)}.",
            hint="Give files whose content is text (UTF-8 or UTF-16), or convert them first.",
        )
    return changes, binary, read_chunks(changes, wanted, count)  # any unreadable file fails here


def _open(wanted: KbSettings, name: str, table: str, dimensions: int, old: Manifest | None) -> Store:
    """The store to write: a new table, or the old one cleaned of what a failed run left."""
    store = open_store(wanted.store, name, table, wanted.url)
    try:
        if old is None:
            store.create(dimensions)
        else:
            _clean(store, old)
    except BaseException:
        store.close()
        raise
    return store


def _commit(store: Store, manifest: Manifest, changes: Changes) -> None:
    store.optimize()
    save_manifest(manifest)  # the commit point
    _collect(store, changes)


def drop_binary(changes: Changes) -> list[SkippedFile]:
    """Take the new or changed files whose content is not text out of this run, so that no
    garbage is embedded; one indexed before (now binary) is removed from the knowledge base."""
    skipped = []
    for source in changes.to_embed:
        reason = binary_reason(Path(source), changes.data[source])
        if reason is None:
            continue
        skipped.append(SkippedFile(source, reason))
        if source in changes.updated:
            changes.updated.remove(source)
            changes.removed.append(source)
        else:
            changes.added.remove(source)
        del changes.hashes[source], changes.data[source]
    changes.removed.sort()
    return skipped


def _listing(files: list[SkippedFile], limit: int = 3) -> str:
    shown = "; ".join(f"{f.source} ({f.reason})" for f in files[:limit])
    return shown + (f"; and {len(files) - limit} more" if len(files) > limit else "")


def _clean(store: Store, old: Manifest) -> None:
    """Delete what a failed run left: rows the manifest does not list, tables it does not name."""
    for table in store.tables():
        if table != old.table:
            store.drop_table(table)
    if store.count() != old.chunks:
        store.retain(old)


def _manifest(name, wanted: KbSettings, table, dimensions, old, changes: Changes, chunks) -> Manifest:
    stamp = now()
    files = {} if old is None else {s: old.files[s] for s in changes.unchanged}
    counts: dict[str, int] = {}
    for chunk in chunks:
        counts[chunk.source] = counts.get(chunk.source, 0) + 1
    for source, digest in changes.hashes.items():
        if source not in files:
            files[source] = FileEntry(hash=digest, chunks=counts.get(source, 0), indexed=stamp)
    return Manifest(
        name=name,
        store=wanted.store,
        url=wanted.url,
        embedder=wanted.embedder,
        dimensions=dimensions,
        chunk_tokens=wanted.chunk_tokens,
        overlap=wanted.overlap,
        table=table,
        created=old.created if old else stamp,
        updated=stamp,
        files=dict(sorted(files.items())),
    )


def _collect(store: Store, changes: Changes) -> None:
    """After the commit: delete the rows of replaced file versions and of removed files."""
    for source in changes.updated:
        store.delete_source(source, keep_hash=changes.hashes[source])
    for source in changes.removed:
        store.delete_source(source)


def _drop_old_table(name: str, old: Manifest, new: Manifest) -> None:
    if (old.store, old.url, old.table) == (new.store, new.url, new.table):
        return
    with open_store(old.store, name, old.table, old.url) as previous:
        previous.drop_table(old.table)
