"""Zero-shot and few-shot: the question alone, or K solved examples before it.

``few-shot:K`` takes the same K examples for every item (one seeded draw per run); ``few-shot:K:similar``
takes the K most similar by embedding. Both keep a prompt inside the model's context window by
dropping the last examples (counted as ``dropped`` and in ``examples_short``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelatlas.errors import ConfigError
from modelatlas.evals.prompting.base import Prepared, PromptSetup, PromptStrategy, counted
from modelatlas.evals.prompting.examples import check_pool, examples_for
from modelatlas.evals.prompting.render import prompt_tokens, render, stops_for
from modelatlas.items import Item

if TYPE_CHECKING:
    from modelatlas.backends.model import Model


def fit(item: Item, examples: list[Item], wanted: int, model: Model, setup: PromptSetup) -> Prepared:
    """The prompt with ``examples`` before ``item``, dropping the last ones while it would
    overflow the context window (an item with no examples is sent as it is)."""
    limit = setup.budget(model)
    mode = model.record.mode
    dropped = 0
    while True:
        prompt = render(item, examples, mode, setup.system, setup.template)
        used = prompt_tokens(prompt, model.count_tokens) if limit is not None else None
        if used is None or limit is None or used <= limit or not examples:
            return Prepared(prompt, stops_for(mode, item), used, dropped, *counted(wanted, examples))
        examples, dropped = examples[:-1], dropped + 1


@dataclass(frozen=True)
class ZeroShot(PromptStrategy):
    """The question alone."""

    name: str = "zero-shot"

    async def prepare(self, item: Item, model: Model, setup: PromptSetup) -> Prepared:
        return fit(item, [], 0, model, setup)


@dataclass(frozen=True)
class FewShot(PromptStrategy):
    """``shots`` solved examples from the run's pool before the question."""

    name: str = ""  # filled from the fields when not given: "few-shot:3", "few-shot:3:similar"
    shots: int = 3
    select: str = "random"  # or "similar" (by embedding)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            suffix = ":similar" if self.select == "similar" else ""
            object.__setattr__(self, "name", f"few-shot:{self.shots}{suffix}")

    def check(self, items: list[Item], pool: list[Item]) -> None:
        if not pool:
            raise ConfigError(
                "Few-shot needs examples with references.",
                hint="Add references to the dataset, or give a pool file with --examples.",
            )
        check_pool(self, items, pool)  # none usable: refused; fewer than asked: a warning

    async def start(self, setup: PromptSetup) -> None:
        if self.select == "similar":
            await setup.rank()

    def examples(self, item: Item, setup: PromptSetup) -> list[Item]:
        return examples_for(item, self, setup.pool, setup.ranked)

    async def prepare(self, item: Item, model: Model, setup: PromptSetup) -> Prepared:
        return fit(item, self.examples(item, setup), self.shots, model, setup)

    def preview(self, item: Item, mode: str, setup: PromptSetup) -> Prepared:
        """Every example the pool gives, without the context guard (no model is loaded for it)."""
        examples = self.examples(item, setup)
        prompt = render(item, examples, mode, setup.system, setup.template)
        return Prepared(prompt, stops_for(mode, item), None, 0, *counted(self.shots, examples))
