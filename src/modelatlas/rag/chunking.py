"""Split a document's text into overlapping chunks of at most N tokens of the embedder.

The text is split into words (runs of non-space characters). A chunk grows word by word while
the sum of the words' token counts stays within N; the chunk's own text is then counted with
the tokenizer and shrunk, a word at a time, until it fits too. The next chunk starts M tokens
back from the end of the previous one (the overlap), and always after that chunk's start. A
single word longer than N tokens makes a chunk of its own (the embedder truncates it).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from modelatlas.errors import RagError
from modelatlas.rag.types import Position

WORD = re.compile(r"\S+")


def check_settings(chunk_tokens: int, overlap: int) -> None:
    if chunk_tokens < 1:
        raise RagError(f"--chunk-tokens must be at least 1, not {chunk_tokens}.")
    if overlap < 0 or overlap >= chunk_tokens:
        raise RagError(
            f"--overlap must be between 0 and the chunk size less one ({chunk_tokens - 1}), not {overlap}.",
            hint="For example --chunk-tokens 200 --overlap 40.",
        )


def chunk_text(
    text: str, count_tokens: Callable[[str], int], chunk_tokens: int = 200, overlap: int = 40
) -> list[Position]:
    """The chunks of ``text`` as positions (index, start char, end char); text[start:end] is a chunk."""
    check_settings(chunk_tokens, overlap)
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    if not words:
        return []
    cache: dict[str, int] = {}

    def cost(i: int) -> int:
        word = text[words[i][0] : words[i][1]]
        if word not in cache:
            cache[word] = max(1, count_tokens(word))
        return cache[word]

    positions: list[Position] = []
    start = 0
    while True:
        end = _grow(words, start, chunk_tokens, cost)
        while end - start > 1 and count_tokens(text[words[start][0] : words[end - 1][1]]) > chunk_tokens:
            end -= 1
        positions.append(Position(len(positions), words[start][0], words[end - 1][1]))
        if end >= len(words):
            return positions
        start = _step_back(start, end, overlap, cost)


def _grow(words: list[tuple[int, int]], start: int, limit: int, cost: Callable[[int], int]) -> int:
    """The end (exclusive) of the longest run of words from ``start`` whose counts sum within limit."""
    end, total = start, 0
    while end < len(words) and (end == start or total + cost(end) <= limit):
        total += cost(end)
        end += 1
    return end


def _step_back(start: int, end: int, overlap: int, cost: Callable[[int], int]) -> int:
    """Where the next chunk starts: as far back from ``end`` as ``overlap`` tokens allow, after start."""
    nxt, back = end, 0
    while nxt - 1 > start and back + cost(nxt - 1) <= overlap:
        nxt -= 1
        back += cost(nxt)
    return nxt
