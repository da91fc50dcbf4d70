"""The values RAG passes around: chunks of documents, search hits, index reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """Where a chunk sits in its document's text: its number and its character span."""

    index: int
    start: int
    end: int

    def __str__(self) -> str:
        return f"#{self.index} [{self.start}:{self.end}]"


@dataclass(frozen=True)
class DocChunk:
    """One chunk as stored: ``doc_hash`` is the hash of the file version it came from."""

    chunk_id: str
    source: str
    doc_hash: str
    text: str
    position: Position


@dataclass(frozen=True)
class Hit:
    """A search result. ``score``: cosine similarity, or the fused rank score for hybrid search."""

    chunk_id: str
    text: str
    source: str
    position: Position
    score: float

    @classmethod
    def of(cls, chunk: DocChunk, score: float) -> Hit:
        return cls(chunk.chunk_id, chunk.text, chunk.source, chunk.position, float(score))

    def to_dict(self) -> dict:
        return {
            "chunk_id": self.chunk_id,
            "source": self.source,
            "position": {
                "index": self.position.index,
                "start": self.position.start,
                "end": self.position.end,
            },
            "score": self.score,
            "text": self.text,
        }


@dataclass(frozen=True)
class SkippedFile:
    """A document left out of an index run, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class IndexReport:
    """What one index run did, counted in files (``chunks``: the knowledge base's total after it).

    ``skipped``: files of a kind we do not read; ``binary``: .txt, .md or .html files whose
    content is not text, left out (a file indexed before that became binary is removed)."""

    added: int
    updated: int
    removed: int
    unchanged: int
    chunks: int
    skipped: int
    binary: tuple[SkippedFile, ...] = ()

    @property
    def warnings(self) -> list[str]:
        return [f"Skipped {f.source}: {f.reason}; it was not indexed." for f in self.binary]
