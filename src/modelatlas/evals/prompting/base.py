"""The strategy contract: one object turns a dataset item into what is sent to a model.

The runner holds strategies only through :class:`Strategy`: it calls ``start`` once per run,
then ``prepare`` for every item and model, and records the :class:`Prepared` it gets back. The
dry run calls ``preview``, which makes no call at all. Neither asks which kind of strategy it
holds, so a new one (chain of thought, a different retriever) is a class, not a branch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from modelatlas.evals.types import Output
from modelatlas.items import Item
from modelatlas.types import Prompt

if TYPE_CHECKING:
    from modelatlas.backends.model import Model

MARGIN = 16  # tokens kept free for the chat template's own markers
DEFAULT_EMBEDDER = "local/all-minilm-l6-v2"  # ranks few-shot examples by similarity


@dataclass(frozen=True)
class Prepared:
    """What is sent for one item, and what the run records about how it was built."""

    prompt: Prompt  # exactly what is sent: messages for a chat model, text for a completion model
    stop: tuple[str, ...] = ()
    prompt_tokens: int | None = None  # counted when the model's context window is known
    dropped: int = 0  # few-shot examples or retrieved chunks the context-budget guard left out
    # Few-shot: the examples the prompt holds, and how many fewer than the strategy asks for.
    examples: int | None = None
    examples_short: int = 0
    retrieved: list[str] | None = None  # RAG: chunk ids, best first
    contexts: list[str] | None = None  # RAG: their texts

    def output(self, **answered: Any) -> Output:
        """The run's record of this item: how the prompt was built (all but the stop sequences),
        with what the model answered (text, usage, timing) or the error."""
        return Output(
            prompt=self.prompt,
            prompt_tokens=self.prompt_tokens,
            dropped=self.dropped,
            examples=self.examples,
            examples_short=self.examples_short,
            retrieved=self.retrieved,
            contexts=self.contexts,
            **answered,
        )


def counted(wanted: int, examples: list[Item]) -> tuple[int | None, int]:
    """A few-shot prompt's (examples, examples_short); (None, 0) for a strategy that asks for none."""
    return (len(examples), wanted - len(examples)) if wanted else (None, 0)


@dataclass
class PromptSetup:
    """What every arm of one run shares when it turns items into prompts."""

    items: list[Item] = field(default_factory=list)  # the run's items (similar examples rank against them)
    pool: list[Item] = field(default_factory=list)  # solved examples for few-shot
    system: str | None = None
    template: Any = None  # a Jinja2 template for the question
    answer_tokens: int = 128  # kept free in the context window for the answer
    embedder: str = DEFAULT_EMBEDDER  # the embedding model that ranks the pool by similarity
    ranked: dict[str, list[int]] | None = None  # per item, pool indices by similarity (filled once)

    def budget(self, model: Model) -> int | None:
        """Tokens a prompt may use: the context window less the answer and a margin (None: unknown)."""
        window = model.context_length
        return None if window is None else window - self.answer_tokens - MARGIN

    async def rank(self) -> None:
        """Rank the pool by similarity to each item (``ranked``), embedded once per run however many ask.
        The embedder comes from the shared pool and is released as soon as the ranking is made."""
        if self.ranked is None:
            from modelatlas.backends.pool import shared_pool
            from modelatlas.catalog.resolve import resolve
            from modelatlas.evals.prompting.examples import rank_by_similarity

            record = await asyncio.to_thread(resolve, self.embedder)
            async with shared_pool().using(record) as embedder:
                self.ranked = await rank_by_similarity(self.items, self.pool, embedder)


@runtime_checkable
class Strategy(Protocol):
    """How a dataset item becomes what is sent to a model (zero-shot, few-shot, RAG, ...)."""

    @property
    def name(self) -> str:
        """As the user wrote it (``few-shot:3``): the arm's label, stored with every answer."""
        ...

    @property
    def shots(self) -> int:
        """Solved examples it puts before the question (0: none); the plan loads a pool for them."""
        ...

    def check(self, items: list[Item], pool: list[Item]) -> None:
        """Refuse, before the run starts, what cannot work (raise a ConfigError with a hint)."""
        ...

    async def start(self, setup: PromptSetup) -> None:
        """Once per run, before any item (e.g. rank the pool by similarity)."""
        ...

    async def prepare(self, item: Item, model: Model, setup: PromptSetup) -> Prepared:
        """What ``model`` is sent for ``item``, fitted to its context window."""
        ...

    def preview(self, item: Item, mode: str, setup: PromptSetup) -> Prepared:
        """The prompt as far as it is known without any call (the dry run's estimate)."""
        ...


class PromptStrategy:
    """A base for strategies: every step but ``prepare`` does nothing unless overridden."""

    name: str
    shots: int = 0

    def check(self, items: list[Item], pool: list[Item]) -> None:
        return None

    async def start(self, setup: PromptSetup) -> None:
        return None

    async def prepare(self, item: Item, model: Model, setup: PromptSetup) -> Prepared:
        raise NotImplementedError

    def preview(self, item: Item, mode: str, setup: PromptSetup) -> Prepared:
        """The question alone, as zero-shot sends it."""
        from modelatlas.evals.prompting.render import render, stops_for

        return Prepared(render(item, [], mode, setup.system, setup.template), stops_for(mode, item))
