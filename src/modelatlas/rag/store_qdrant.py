"""Qdrant: in local mode (files under the home) or on a server or cluster (``url``).

Local mode is qdrant-client's embedded engine; it locks its folder, so close the store when
done. On a server, the API key comes from the QDRANT_API_KEY environment variable. Qdrant has
no BM25 of its own here, so full-text search runs :mod:`modelatlas.rag.bm25` over the stored
texts, built once per store object and rebuilt when the row count changes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelatlas.errors import RagError
from modelatlas.rag.bm25 import BM25
from modelatlas.rag.stores import Store, belongs
from modelatlas.rag.types import DocChunk, Position

BATCH = 256


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"modelatlas:{chunk_id}"))


class QdrantStore(Store):
    def __init__(self, folder: Path, table: str, *, url: str | None = None, kb: str = ""):
        from modelatlas.backends.base import require

        qdrant = require("qdrant_client", extra="rag", package="qdrant-client")
        super().__init__(table)
        self.url, self.kb = url, kb
        if url:
            self.client = qdrant.QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY") or None)
            try:
                self.client.get_collections()
            except Exception as exc:  # connection refused, bad key, not a Qdrant server
                raise RagError(
                    f"Cannot reach the Qdrant server at {url}: {str(exc)[:200]}",
                    hint="Check the URL and that the server runs; set QDRANT_API_KEY if it needs a key.",
                ) from exc
        else:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                self.client = qdrant.QdrantClient(path=str(folder))
            except RuntimeError as exc:  # another process holds the folder
                raise RagError(
                    f"Cannot open the Qdrant store {folder}: {exc}",
                    hint="Close the other program that uses this knowledge base, or use a Qdrant server.",
                ) from exc
        self._bm25: tuple[int, BM25, list[DocChunk]] | None = None

    def create(self, dimensions: int) -> None:
        from qdrant_client import models

        if self.client.collection_exists(self.table):
            self.client.delete_collection(self.table)
        self.client.create_collection(
            self.table, vectors_config=models.VectorParams(size=dimensions, distance=models.Distance.DOT)
        )
        if self.url:  # payload indexes only matter on a server
            self.client.create_payload_index(self.table, "source", models.PayloadSchemaType.KEYWORD)

    def add(self, chunks: Sequence[DocChunk], vectors: np.ndarray) -> None:
        from qdrant_client import models

        points = [
            models.PointStruct(id=point_id(c.chunk_id), vector=v.tolist(), payload=_payload(c))
            for c, v in zip(chunks, np.asarray(vectors, dtype=np.float32))
        ]
        for i in range(0, len(points), BATCH):
            self.client.upsert(self.table, points=points[i : i + BATCH], wait=True)

    def delete_source(self, source: str, keep_hash: str | None = None) -> None:
        from qdrant_client import models

        must = [models.FieldCondition(key="source", match=models.MatchValue(value=source))]
        must_not = []
        if keep_hash is not None:
            must_not.append(models.FieldCondition(key="doc_hash", match=models.MatchValue(value=keep_hash)))
        selector = models.FilterSelector(filter=models.Filter(must=must, must_not=must_not))
        self.client.delete(self.table, points_selector=selector, wait=True)

    def delete_ids(self, chunk_ids: Sequence[str]) -> None:
        from qdrant_client import models

        ids = [point_id(c) for c in chunk_ids]
        for i in range(0, len(ids), BATCH):
            selector = models.PointIdsList(points=ids[i : i + BATCH])
            self.client.delete(self.table, points_selector=selector, wait=True)

    def _scroll(self, fields: list[str] | bool) -> list[dict]:
        payloads: list[dict] = []
        offset = None
        while True:
            points, offset = self.client.scroll(
                self.table, limit=1024, offset=offset, with_payload=fields, with_vectors=False
            )
            payloads += [p.payload or {} for p in points]
            if offset is None:
                return payloads

    def row_keys(self) -> list[tuple[str, str, str]]:
        return [
            (p["chunk_id"], p["source"], p["doc_hash"])
            for p in self._scroll(["chunk_id", "source", "doc_hash"])
        ]

    def search(self, vector: np.ndarray, k: int) -> list[tuple[DocChunk, float]]:
        found = self.client.query_points(
            self.table, query=np.asarray(vector, dtype=np.float32).tolist(), limit=k, with_payload=True
        )
        return [(_chunk(p.payload or {}), p.score) for p in found.points]

    def text_search(self, query: str, k: int) -> list[tuple[DocChunk, float]]:
        count = self.count()
        if self._bm25 is None or self._bm25[0] != count:
            chunks = [_chunk(p) for p in self._scroll(True)]
            self._bm25 = (count, BM25([c.text for c in chunks]), chunks)
        _, index, chunks = self._bm25
        return [(chunks[i], score) for i, score in index.top(query, k)]

    def count(self) -> int:
        return self.client.count(self.table, exact=True).count

    def tables(self) -> list[str]:
        names = [c.name for c in self.client.get_collections().collections]
        return [n for n in names if belongs(self.kb, n, self.url)]

    def drop_table(self, table: str) -> None:
        if self.client.collection_exists(table):
            self.client.delete_collection(table)

    def close(self) -> None:
        self.client.close()


def _payload(c: DocChunk) -> dict:
    p = c.position
    return {
        "chunk_id": c.chunk_id,
        "source": c.source,
        "doc_hash": c.doc_hash,
        "chunk_index": p.index,
        "char_start": p.start,
        "char_end": p.end,
        "text": c.text,
    }


def _chunk(p: dict) -> DocChunk:
    position = Position(p["chunk_index"], p["char_start"], p["char_end"])
    return DocChunk(p["chunk_id"], p["source"], p["doc_hash"], p["text"], position)
