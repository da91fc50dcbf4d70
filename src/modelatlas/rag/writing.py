"""The steps of an index run: which files changed, their chunks, and embedding them into a store."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelatlas.errors import RagError
from modelatlas.rag.chunking import chunk_text
from modelatlas.rag.manifest import Manifest
from modelatlas.rag.readers import read_text
from modelatlas.rag.stores import Store, unit
from modelatlas.rag.types import DocChunk

BATCH = 64  # chunks per embedding call


@dataclass
class Changes:
    """The files of this run against the manifest, by source (the file's resolved path)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)  # every current file's content hash
    data: dict[str, bytes] = field(default_factory=dict)  # the bytes of added and updated files

    @property
    def to_embed(self) -> list[str]:
        return sorted(self.added + self.updated)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_id(source: str, doc_hash: str, index: int) -> str:
    """Stable per file version: the same file content always gives the same ids."""
    return f"{hashlib.sha256(source.encode()).hexdigest()[:12]}-{doc_hash[:12]}-{index}"


def plan_changes(files: list[Path], old: Manifest | None, rebuild: bool = False) -> Changes:
    """Hash every file and sort it into added, updated or unchanged; list the removed ones."""
    changes = Changes()
    known = old.files if old else {}
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RagError(f"Cannot read {path}: {exc.strerror}.") from exc
        source, digest = str(path), file_hash(data)
        changes.hashes[source] = digest
        if source not in known:
            changes.added.append(source)
        elif rebuild or known[source].hash != digest:
            changes.updated.append(source)
        else:
            changes.unchanged.append(source)
            continue
        changes.data[source] = data
    changes.removed = sorted(s for s in known if s not in changes.hashes)
    return changes


def read_chunks(changes: Changes, wanted, count_tokens: Callable[[str], int]) -> list[DocChunk]:
    """The chunks of every added or updated file (``wanted``: the run's KbSettings)."""
    chunks: list[DocChunk] = []
    for source in changes.to_embed:
        text = read_text(Path(source), changes.data[source])
        digest = changes.hashes[source]
        for position in chunk_text(text, count_tokens, wanted.chunk_tokens, wanted.overlap):
            chunk = text[position.start : position.end]
            chunks.append(DocChunk(chunk_id(source, digest, position.index), source, digest, chunk, position))
    return chunks


async def store_chunks(
    model, store: Store, chunks: list[DocChunk], progress: Callable[[int, int], None] | None = None
) -> None:
    """Embed ``chunks`` in batches and add each batch to ``store`` as soon as it is embedded."""
    total = len(chunks)
    if progress is not None:
        progress(0, total)
    for start in range(0, total, BATCH):
        part = chunks[start : start + BATCH]
        vectors = unit((await model.embed([c.text for c in part])).vectors)
        if vectors.shape[0] != len(part):
            raise RagError(f"{model.id} returned {vectors.shape[0]} embeddings for {len(part)} chunks.")
        await asyncio.to_thread(store.add, part, vectors)  # a blocking write, off the loop
        if progress is not None:
            progress(start + len(part), total)
