"""LanceDB, embedded: a knowledge base's table in files under the home.

Full-text search uses LanceDB's native inverted index (no tantivy; it works offline). Vector
search is exact: below a few thousand rows a flat scan, above that an IVF_FLAT index that is
searched with every partition probed, which is much faster than LanceDB's plain flat scan and
returns the same neighbours (see bench/retrieval.py). Rows added after the index was built are
folded into it by ``optimize``; until then LanceDB scans them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelatlas.errors import RagError
from modelatlas.rag.stores import Store
from modelatlas.rag.types import DocChunk, Position

COLUMNS = ["chunk_id", "source", "doc_hash", "chunk_index", "char_start", "char_end", "text"]
VECTOR_INDEX_MIN_ROWS = 5_000
ALL_PARTITIONS = 1_000_000  # nprobes: probe every partition, so the search stays exact
DELETE_BATCH = 500


def _schema(dimensions: int):
    import pyarrow as pa

    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("source", pa.string()),
            ("doc_hash", pa.string()),
            ("chunk_index", pa.int32()),
            ("char_start", pa.int64()),
            ("char_end", pa.int64()),
            ("text", pa.string()),
            ("vector", pa.list_(pa.float32(), dimensions)),
        ]
    )


def literal(value: str) -> str:
    """A SQL string literal for a LanceDB filter."""
    return "'" + value.replace("'", "''") + "'"


class LanceStore(Store):
    def __init__(self, folder: Path, table: str):
        from modelatlas.backends.base import require

        lancedb = require("lancedb", extra="rag")
        super().__init__(table)
        folder.mkdir(parents=True, exist_ok=True)
        self.db = lancedb.connect(str(folder))
        self._table = None

    @property
    def tbl(self):
        if self._table is None:
            try:
                self._table = self.db.open_table(self.table)
            except (ValueError, FileNotFoundError) as exc:
                raise RagError(
                    f"The LanceDB table {self.table!r} is missing from {self.db.uri}.",
                    hint="Rebuild the knowledge base: modelatlas rag index PATH --name KB --rebuild",
                ) from exc
        return self._table

    def create(self, dimensions: int) -> None:
        from lancedb.index import FTS

        if self.table in self.tables():
            self.db.drop_table(self.table)
        self._table = self.db.create_table(self.table, schema=_schema(dimensions))
        self._table.create_index("text", config=FTS())

    def add(self, chunks: Sequence[DocChunk], vectors: np.ndarray) -> None:
        import pyarrow as pa

        if not chunks:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        schema = self.tbl.schema
        columns = [
            pa.array([c.chunk_id for c in chunks]),
            pa.array([c.source for c in chunks]),
            pa.array([c.doc_hash for c in chunks]),
            pa.array([c.position.index for c in chunks], pa.int32()),
            pa.array([c.position.start for c in chunks], pa.int64()),
            pa.array([c.position.end for c in chunks], pa.int64()),
            pa.array([c.text for c in chunks]),
            pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
        ]
        self.tbl.add(pa.Table.from_arrays(columns, schema=schema))

    def delete_source(self, source: str, keep_hash: str | None = None) -> None:
        where = f"source = {literal(source)}"
        if keep_hash is not None:
            where += f" AND doc_hash != {literal(keep_hash)}"
        self.tbl.delete(where)

    def delete_ids(self, chunk_ids: Sequence[str]) -> None:
        ids = list(chunk_ids)
        for i in range(0, len(ids), DELETE_BATCH):
            self.tbl.delete(f"chunk_id IN ({', '.join(literal(c) for c in ids[i : i + DELETE_BATCH])})")

    def row_keys(self) -> list[tuple[str, str, str]]:
        n = self.count()
        if n == 0:
            return []
        rows = self.tbl.search().select(["chunk_id", "source", "doc_hash"]).limit(n).to_arrow()
        return list(zip(*(rows[c].to_pylist() for c in ("chunk_id", "source", "doc_hash"))))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[DocChunk, float]]:
        query = (
            self.tbl.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector")
            .distance_type("dot")
            .nprobes(ALL_PARTITIONS)
            .select([*COLUMNS, "_distance"])
            .limit(k)
        )
        # LanceDB's "dot" distance is 1 - the inner product.
        return [(_chunk(row), 1.0 - row["_distance"]) for row in query.to_arrow().to_pylist()]

    def text_search(self, query: str, k: int) -> list[tuple[DocChunk, float]]:
        if not query.strip():
            return []
        found = (
            self.tbl.search(query, query_type="fts", fts_columns="text").select([*COLUMNS, "_score"]).limit(k)
        )
        return [(_chunk(row), row["_score"]) for row in found.to_arrow().to_pylist()]

    def count(self) -> int:
        return self.tbl.count_rows()

    def tables(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:
            page = self.db.list_tables(page_token=token)
            names += page.tables
            token = page.page_token
            if not token:
                return names

    def drop_table(self, table: str) -> None:
        self.db.drop_table(table, ignore_missing=True)
        if table == self.table:
            self._table = None

    def optimize(self) -> None:
        """Index the new rows: the full-text index always, the vector index once it pays off."""
        from lancedb.index import FTS, IvfFlat

        indexed = {tuple(i.columns) for i in self.tbl.list_indices()}
        if ("text",) not in indexed:
            self.tbl.create_index("text", config=FTS())
        rows = self.count()
        if ("vector",) not in indexed and rows >= VECTOR_INDEX_MIN_ROWS:
            partitions = max(2, min(256, rows // 1500))
            self.tbl.create_index("vector", config=IvfFlat(distance_type="dot", num_partitions=partitions))
        self.tbl.optimize()


def _chunk(row: dict) -> DocChunk:
    position = Position(row["chunk_index"], row["char_start"], row["char_end"])
    return DocChunk(row["chunk_id"], row["source"], row["doc_hash"], row["text"], position)
