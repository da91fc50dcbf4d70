"""The vector store interface, and how a knowledge base's store is opened.

A store holds one table of chunks (text, source, file hash, position, vector) for a knowledge
base. Vectors are unit length, so the inner product is the cosine similarity. Two stores
implement it: LanceDB files under the home (the default) and Qdrant (files under the home, or
a server with ``url``). A knowledge base may hold several tables while an index run rebuilds
it; the manifest names the one in force.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from modelatlas.errors import RagError
from modelatlas.rag.manifest import Manifest, kb_dir
from modelatlas.rag.types import DocChunk

STORES = ("lancedb", "qdrant")


class Store(ABC):
    """One table of chunks with their vectors."""

    def __init__(self, table: str):
        self.table = table

    @abstractmethod
    def create(self, dimensions: int) -> None:
        """Make the table, empty (dropping any table of that name left by a failed run)."""

    @abstractmethod
    def add(self, chunks: Sequence[DocChunk], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def delete_source(self, source: str, keep_hash: str | None = None) -> None:
        """Delete the rows of ``source``, except those of the file version ``keep_hash``."""

    @abstractmethod
    def delete_ids(self, chunk_ids: Sequence[str]) -> None: ...

    @abstractmethod
    def row_keys(self) -> list[tuple[str, str, str]]:
        """(chunk_id, source, doc_hash) of every row."""

    @abstractmethod
    def search(self, vector: np.ndarray, k: int) -> list[tuple[DocChunk, float]]:
        """The k rows nearest to a unit ``vector`` by inner product, with it, best first."""

    @abstractmethod
    def text_search(self, query: str, k: int) -> list[tuple[DocChunk, float]]:
        """The k rows that best match ``query`` by full-text (BM25) search, best first."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def tables(self) -> list[str]:
        """The tables of this knowledge base in the store (this one included)."""

    @abstractmethod
    def drop_table(self, table: str) -> None: ...

    def optimize(self) -> None:
        """Bring the search indexes up to date (called after writing, before the manifest)."""

    def close(self) -> None:
        """Release files and connections."""

    def retain(self, manifest: Manifest | None) -> int:
        """Delete the rows that ``manifest`` does not list (left by a failed run); how many."""
        stale = [
            cid for cid, source, h in self.row_keys() if manifest is None or not manifest.visible(source, h)
        ]
        if stale:
            self.delete_ids(stale)
        return len(stale)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def table_name(name: str, generation: int, url: str | None) -> str:
    """A server is shared by every knowledge base, so its collections carry the KB's name."""
    return f"modelatlas-{name}-{generation}" if url else f"chunks-{generation}"


def generation_of(table: str) -> int:
    match = re.search(r"-(\d+)$", table)
    return int(match.group(1)) if match else 0


def belongs(name: str, table: str, url: str | None) -> bool:
    prefix = f"modelatlas-{name}-" if url else "chunks-"
    return table.startswith(prefix) and table[len(prefix) :].isdigit()


def open_store(kind: str, name: str, table: str, url: str | None = None) -> Store:
    """The store of knowledge base ``name``: its files live in ``<home>/rag/<name>/``."""
    if kind == "lancedb":
        if url:
            raise RagError("--url is for Qdrant servers.", hint="Add --store qdrant, or drop --url.")
        from modelatlas.rag.store_lance import LanceStore

        return LanceStore(kb_dir(name) / "lance", table)
    if kind == "qdrant":
        from modelatlas.rag.store_qdrant import QdrantStore

        return QdrantStore(kb_dir(name) / "qdrant", table, url=url, kb=name)
    raise RagError(f"Unknown store {kind!r}.", hint=f"Use one of: {', '.join(STORES)}.")


def unit(vectors: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Float32 rows scaled to unit length (a zero row stays zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms == 0, 1.0, norms)
