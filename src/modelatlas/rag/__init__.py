"""Retrieval augmented generation: index documents, search them, answer questions with citations.

from modelatlas.rag import index, open_kb, ask
index(["docs/"], "handbook")
hits = open_kb("handbook").search("How do refunds work?", k=5, hybrid=True)
answer = await ask("handbook", "How do refunds work?", "local/smollm2-135m-instruct")
"""

from modelatlas.rag.ask import Answer, Citation, ask, context_prompt, pack
from modelatlas.rag.index import aindex, index
from modelatlas.rag.manifest import Manifest
from modelatlas.rag.search import KnowledgeBase, list_kbs, open_kb
from modelatlas.rag.types import DocChunk, Hit, IndexReport, Position, SkippedFile

__all__ = [
    "Answer",
    "Citation",
    "DocChunk",
    "Hit",
    "IndexReport",
    "KnowledgeBase",
    "Manifest",
    "Position",
    "SkippedFile",
    "aindex",
    "ask",
    "context_prompt",
    "index",
    "list_kbs",
    "open_kb",
    "pack",
]
