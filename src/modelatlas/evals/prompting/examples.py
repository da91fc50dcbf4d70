"""Few-shot examples: which solved pool rows go before an item (seeded, or most similar first)."""

from __future__ import annotations

import logging
import random
from collections import Counter
from typing import TYPE_CHECKING, Protocol

from modelatlas.errors import ConfigError
from modelatlas.items import Item

if TYPE_CHECKING:
    from modelatlas.backends.model import Model

log = logging.getLogger(__name__)


class Shots(Protocol):
    """What choosing examples reads of a strategy (a :class:`FewShot`; zero-shot and RAG ask for 0)."""

    @property
    def name(self) -> str: ...
    @property
    def shots(self) -> int: ...
    @property
    def select(self) -> str: ...
    @property
    def seed(self) -> int: ...


def usable(example: Item, item: Item) -> bool:
    """Whether ``example`` can be shown before ``item``: it has an answer and is not the item."""
    return example.id != item.id and bool(example.reference) and example.prompt_text != item.prompt_text


def examples_for(
    item: Item, strategy: Shots, pool: list[Item], ranked: dict[str, list[int]] | None = None
) -> list[Item]:
    """K examples with references, never the item itself: the most similar ones when ``ranked``
    (pool indices by similarity to each item) is given, else the first K usable ones of the pool
    shuffled once with the strategy's seed. Every item then gets the same examples in the same
    order (an item that is one of them gets the next one instead), so the prompts share their
    first turns and a model with a prefix cache decodes them once: on the edtech example's 20
    items, examples drawn for each item took SmolLM2 2.25x the zero-shot time, against
    (measured in bench/eval_throughput.py) little more with one draw for the run."""
    if strategy.shots == 0:
        return []
    if strategy.select == "similar" and ranked is not None:
        return [pool[i] for i in ranked[item.id] if usable(pool[i], item)][: strategy.shots]
    return [p for p in _drawn(pool, strategy.seed) if usable(p, item)][: strategy.shots]


def _drawn(pool: list[Item], seed: int) -> list[Item]:
    """The pool in the order of one seeded shuffle (the same for every item of a run)."""
    order = list(range(len(pool)))
    random.Random(f"{seed}:{len(pool)}").shuffle(order)
    return [pool[i] for i in order]


def available_examples(items: list[Item], pool: list[Item]) -> list[int]:
    """For each item, how many pool rows ``usable`` allows before it (counted, not compared
    pairwise, so 10,000 items against a 10,000-row pool stay instant)."""
    answered = [p for p in pool if p.reference]
    ids = Counter(p.id for p in answered)
    texts = Counter(p.prompt_text for p in answered)
    both = Counter((p.id, p.prompt_text) for p in answered)
    return [len(answered) - ids[i.id] - texts[i.prompt_text] + both[(i.id, i.prompt_text)] for i in items]


def check_pool(strategy: Shots, items: list[Item], pool: list[Item], warn: bool = True) -> None:
    """Refuse a few-shot strategy that the pool leaves without a single example (it would be
    zero-shot under another name); warn when some items will get fewer examples than asked."""
    if not strategy.shots:
        return
    got = [min(strategy.shots, n) for n in available_examples(items, pool)]
    if not any(got):
        answered = sum(1 for p in pool if p.reference)
        raise ConfigError(
            f"{strategy.name} would send no examples: {answered} of the {len(pool)} pool rows have "
            "an answer, and none of them can go before the test items (an example is never the "
            "item itself).",
            hint="Give the pool rows a 'reference', or in chat format end each with the assistant's "
            "answer (--examples for eval, --train for improve).",
        )
    short = sum(1 for n in got if n < strategy.shots)
    if short and warn:
        log.warning(
            "%s: %d of %d items get fewer than %d examples: the pool has too few usable rows "
            "(counted per item as examples_short).",
            strategy.name,
            short,
            len(items),
            strategy.shots,
        )


async def rank_by_similarity(items: list[Item], pool: list[Item], embedder: Model) -> dict[str, list[int]]:
    """For each item, the pool's indices from most to least similar (cosine of embeddings)."""
    import numpy as np

    pool_vectors = np.asarray((await embedder.embed([p.prompt_text for p in pool])).vectors)
    item_vectors = np.asarray((await embedder.embed([i.prompt_text for i in items])).vectors)
    pool_vectors /= np.linalg.norm(pool_vectors, axis=1, keepdims=True) + 1e-12
    item_vectors /= np.linalg.norm(item_vectors, axis=1, keepdims=True) + 1e-12
    order = np.argsort(-(item_vectors @ pool_vectors.T), axis=1)
    return {item.id: [int(i) for i in row] for item, row in zip(items, order, strict=True)}
