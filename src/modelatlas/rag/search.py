"""Open a knowledge base and search it: by vector, or hybrid (vector + full text, fused by RRF).

Search shows only the rows of the file versions the manifest lists (see :mod:`modelatlas.rag.index`):
when a failed run left extra rows, it asks the store for that many more and filters them out.
Open knowledge bases are kept per process (Qdrant's local mode locks its folder, so a second
client on it would fail); an index run closes the one it writes.

Searching never blocks the event loop (an evaluation runs many searches while other items
generate): the query is embedded through the embedding Model's async ``embed``, and the
store's blocking calls run together in one worker thread. The embedding models come from the
process's :func:`~modelatlas.backends.pool.shared_pool`, kept loaded between searches.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import numpy as np

from modelatlas.errors import RagError
from modelatlas.rag.aio import run_sync
from modelatlas.rag.manifest import Manifest, kb_dir, kb_names, load_manifest, require_manifest
from modelatlas.rag.stores import Store, open_store, unit
from modelatlas.rag.types import DocChunk, Hit

RRF_K = 60
HYBRID_DEPTH = 4  # each list of a hybrid search holds this many times k candidates (at least 20)

if TYPE_CHECKING:
    from modelatlas.backends.model import Model
    from modelatlas.records import ModelRecord

_open: dict[str, KnowledgeBase] = {}  # by the KB's folder, so a new home means a new KB
_embedders: dict[str, ModelRecord] = {}  # the records of the embedding models, by id
_lock = threading.Lock()


class KnowledgeBase:
    """A searchable knowledge base: its manifest, its store and its embedder."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.folder = kb_dir(manifest.name)
        self._store: Store | None = None
        # The stores' clients are not documented as safe to share between threads: one lookup
        # at a time per knowledge base (a lookup takes milliseconds; the embedding, which takes
        # longer, runs outside it).
        self._using = threading.Lock()

    def __repr__(self) -> str:
        return f"KnowledgeBase({self.name!r}, {self.manifest.chunks} chunks)"

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def store(self) -> Store:
        if self._store is None:
            m = self.manifest
            self._store = open_store(m.store, m.name, m.table, m.url)
        return self._store

    def search(self, query: str, k: int = 5, hybrid: bool = False) -> list[Hit]:
        """The k chunks that best answer ``query``, best first.

        For synchronous callers only (a script, the sync Python API): it runs :meth:`asearch` in
        an event loop of its own. Code that is async already awaits :meth:`asearch`."""
        return run_sync(self.asearch(query, k, hybrid))

    async def asearch(self, query: str, k: int = 5, hybrid: bool = False) -> list[Hit]:
        """The k chunks that best answer ``query``, best first, without blocking the event loop."""
        if k < 1:
            raise RagError(f"k must be at least 1, not {k}.")
        if not query.strip():
            raise RagError("The query is empty.", hint="Ask a question or give some words to look for.")
        async with embedding_model(self.manifest.embedder) as model:
            vector = unit((await model.embed([query])).vectors)[0]
        return await asyncio.to_thread(self._lookup, vector, query, k, hybrid)

    def _lookup(self, vector: np.ndarray, query: str, k: int, hybrid: bool) -> list[Hit]:
        """The store's part of a search (blocking: it runs in a worker thread)."""
        with self._using:
            store = self.store
            orphans = max(0, store.count() - self.manifest.chunks)
            depth = (max(k * HYBRID_DEPTH, 20) if hybrid else k) + orphans
            dense = self._visible(store.search(vector, depth))
            if not hybrid:
                return [Hit.of(chunk, score) for chunk, score in dense[:k]]
            sparse = self._visible(store.text_search(query, depth))
        return [Hit.of(chunk, score) for chunk, score in rrf([dense, sparse])[:k]]

    def _visible(self, found: list[tuple[DocChunk, float]]) -> list[tuple[DocChunk, float]]:
        return [(c, s) for c, s in found if self.manifest.visible(c.source, c.doc_hash)]

    def close(self) -> None:
        key = str(self.folder)
        with _lock:
            if _open.get(key) is self:
                del _open[key]
        with self._using:  # a lookup running in a worker thread finishes first
            if self._store is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def rrf(ranked: list[list[tuple[DocChunk, float]]], k: int = RRF_K) -> list[tuple[DocChunk, float]]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) to a chunk's score (rank from 1)."""
    scores: dict[str, float] = {}
    chunks: dict[str, DocChunk] = {}
    for results in ranked:
        for rank, (chunk, _) in enumerate(results, start=1):
            scores[chunk.chunk_id] = scores.get(chunk.chunk_id, 0.0) + 1.0 / (k + rank)
            chunks.setdefault(chunk.chunk_id, chunk)
    order = sorted(scores, key=lambda cid: (-scores[cid], cid))
    return [(chunks[cid], scores[cid]) for cid in order]


def open_kb(name: str) -> KnowledgeBase:
    """The knowledge base ``name``; UnknownKnowledgeBaseError (with "did you mean") if there is none."""
    from modelatlas.errors import UnknownKnowledgeBaseError
    from modelatlas.rag.manifest import NAME

    if not NAME.fullmatch(name or ""):
        raise UnknownKnowledgeBaseError(name, kb_names())
    manifest = require_manifest(name)
    key = str(kb_dir(name))
    with _lock:
        cached = _open.get(key)
        if cached is not None and cached.manifest == manifest:
            return cached
    if cached is not None:
        cached.close()
    kb = KnowledgeBase(manifest)
    with _lock:
        _open[key] = kb
    return kb


def forget(name: str) -> None:
    """Close the open knowledge base ``name`` (an index run is about to write it)."""
    with _lock:
        cached = _open.pop(str(kb_dir(name)), None)
    if cached is not None:
        cached.close()


def close_all() -> None:
    """Close every knowledge base this process has open."""
    with _lock:
        found = list(_open.values())
        _open.clear()
    for kb in found:
        kb.close()


def list_kbs() -> list[Manifest]:
    """The manifests of every knowledge base, by name."""
    return [m for m in (load_manifest(n) for n in kb_names()) if m is not None]


@contextlib.asynccontextmanager
async def embedding_model(model_id: str) -> AsyncIterator[Model]:
    """The embedding model ``model_id`` for the block, from the process's model pool.

    Kept loaded (warm) when the block ends: every search and index run needs it again, and
    loading all-MiniLM-L6-v2 takes seconds (torch's import included) where embedding a query
    takes tens of milliseconds and a warm acquire and release under 0.1 ms.
    An unknown id fails here, with "did you mean"."""
    from modelatlas.backends.pool import shared_pool

    with _lock:
        record = _embedders.get(model_id)
    if record is None:
        from modelatlas.catalog.resolve import resolve

        record = await asyncio.to_thread(resolve, model_id)
        with _lock:
            _embedders.setdefault(model_id, record)
    async with shared_pool().using(record, warm=True) as model:
        yield model
