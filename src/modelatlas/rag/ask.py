"""Answer a question from a knowledge base, with numbered sources and citations.

The retrieved chunks become numbered sources [1], [2] … in the prompt, as many as fit in the
model's context window after the question, the answer's tokens and a margin; the model is asked
to answer only from them and to cite them like [1]. The numbers in its answer are mapped back to
the chunks. :func:`context_prompt` and :func:`pack` are shared with the evaluation harness.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelatlas.rag.types import Hit, Position
from modelatlas.types import Message, Prompt, Usage

INSTRUCTIONS = (
    "Answer the question using only the numbered sources below. Cite the source of each statement "
    "by its number in square brackets, like [1]. If the sources do not contain the answer, say "
    "that you do not know."
)
MARGIN = 32  # tokens kept free for the chat template's markers
SOURCE_SEPARATOR = 2  # tokens: the blank line between two sources
CITATION = re.compile(r"\[(?:sources?\s*)?(\d+(?:\s*[,;]\s*(?:sources?\s*)?\d+)*)\]", re.IGNORECASE)


@dataclass(frozen=True)
class Citation:
    n: int  # the source's number in the prompt
    chunk_id: str
    source: str
    position: Position
    text: str


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    hits: list[Hit]  # the sources in the prompt, numbered from 1 in this order
    dropped: int  # retrieved chunks left out because they did not fit in the context window
    usage: Usage = field(default_factory=Usage)
    cited: bool = True  # False: the answer cited no source, so ``citations`` lists every source

    def to_dict(self) -> dict:
        return {
            "answer": self.text,
            "cited": self.cited,
            "citations": [
                {"n": c.n, "chunk_id": c.chunk_id, "source": c.source, "position": vars(c.position)}
                for c in self.citations
            ],
            "sources": [h.to_dict() for h in self.hits],
            "dropped": self.dropped,
            "usage": self.usage.model_dump(),
        }


def source_block(n: int, hit: Hit) -> str:
    return f"[{n}] {Path(hit.source).name}\n{hit.text.strip()}"


def context_prompt(
    question: str, hits: Sequence[Hit], mode: str = "chat", system: str | None = None
) -> Prompt:
    """The prompt with ``hits`` as numbered sources: messages for a chat model, text for a base one."""
    instructions = f"{system.strip()}\n\n{INSTRUCTIONS}" if system else INSTRUCTIONS
    sources = "\n\n".join(source_block(n, h) for n, h in enumerate(hits, start=1)) or "(no sources)"
    body = f"Sources:\n\n{sources}\n\nQuestion: {question.strip()}"
    if mode == "completion":
        return f"{instructions}\n\n{body}\nAnswer:"
    return [Message.system(instructions), Message.user(body)]


def pack(
    hits: Sequence[Hit], budget_tokens: int, count_tokens: Callable[[str], int]
) -> tuple[list[Hit], int]:
    """The hits that fit in ``budget_tokens``, best first, and how many were dropped."""
    kept: list[Hit] = []
    used = 0
    for hit in hits:
        cost = count_tokens(source_block(len(kept) + 1, hit)) + SOURCE_SEPARATOR
        if used + cost <= budget_tokens:
            kept.append(hit)
            used += cost
    return kept, len(hits) - len(kept)


def prompt_tokens(prompt: Prompt, count_tokens: Callable[[str], int]) -> int:
    if isinstance(prompt, str):
        return count_tokens(prompt)
    return sum(count_tokens(m.text) + 4 for m in prompt)


def cite(text: str, hits: Sequence[Hit]) -> tuple[list[Citation], bool]:
    """The sources whose numbers the answer cites, in number order; all of them if it cites none."""
    numbers: set[int] = set()
    for match in CITATION.finditer(text):
        numbers.update(int(n) for n in re.findall(r"\d+", match.group(1)) if 1 <= int(n) <= len(hits))
    cited = bool(numbers)
    chosen = sorted(numbers) if cited else range(1, len(hits) + 1)
    citations = [
        Citation(n, hits[n - 1].chunk_id, hits[n - 1].source, hits[n - 1].position, hits[n - 1].text)
        for n in chosen
    ]
    return citations, cited


async def ask(kb, question: str, model, k: int = 5, max_tokens: int = 256, hybrid: bool = False) -> Answer:
    """Answer ``question`` from the knowledge base ``kb`` (a name or a KnowledgeBase) with ``model``
    (an id, opened here and closed after the answer, or a Model the caller keeps), citing the
    chunks it used."""
    from modelatlas.loading import load_model
    from modelatlas.rag.search import open_kb

    kb = open_kb(kb) if isinstance(kb, str) else kb
    if not isinstance(model, str):
        return await _ask(kb, question, model, k, max_tokens, hybrid)
    opened = load_model(model)
    try:
        return await _ask(kb, question, opened, k, max_tokens, hybrid)
    finally:
        await opened.aclose()


async def _ask(kb, question: str, model, k: int, max_tokens: int, hybrid: bool) -> Answer:
    hits = await kb.asearch(question, k=k, hybrid=hybrid)
    mode = model.record.mode
    window = model.context_length
    dropped = 0
    if window:
        base = prompt_tokens(context_prompt(question, [], mode), model.count_tokens)
        hits, dropped = pack(hits, window - base - max_tokens - MARGIN, model.count_tokens)
    prompt = context_prompt(question, hits, mode)
    stop = ("\nQuestion:",) if mode == "completion" else ()
    done = await model.generate(prompt, max_tokens=max_tokens, stop=stop)
    citations, cited = cite(done.text, hits)
    return Answer(done.text.strip(), citations, hits, dropped, done.usage, cited)
