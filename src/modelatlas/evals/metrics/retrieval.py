"""Retrieval metrics: recall@k, MRR and nDCG@k, with binary relevance.

The relevant ids are the item's ``reference``; the retrieved ids are ``Output.retrieved``, best
first (a RAG strategy fills it). A retrieved id listed twice counts once, at its first rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from modelatlas.errors import ConfigError
from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.types import Item, Output, Score

DEFAULT_K = 5
NO_RETRIEVED = "the strategy returned no retrieved ids"


def check_k(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"The retrieval option k must be a whole number of at least 1, not {value!r}.",
            hint="For example: k=5.",
        )
    return value


def ranked(retrieved: list[str]) -> list[str]:
    """The retrieved ids in order, each once."""
    return list(dict.fromkeys(retrieved))


def recall_at_k(relevant: set[str], retrieved: list[str], k: int) -> float:
    return len(relevant & set(ranked(retrieved)[:k])) / len(relevant)


def reciprocal_rank(relevant: set[str], retrieved: list[str], k: int | None = None) -> float:
    for rank, doc in enumerate(ranked(retrieved)[:k], start=1):
        if doc in relevant:
            return 1 / rank
    return 0.0


def ndcg_at_k(relevant: set[str], retrieved: list[str], k: int) -> float:
    """DCG = Σ rel_i / log2(i + 1) over the top k, divided by the DCG of a perfect ranking."""
    dcg = sum(1 / math.log2(i + 1) for i, doc in enumerate(ranked(retrieved)[:k], start=1) if doc in relevant)
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


class _Retrieval(Metric):
    def validate(self, options: dict[str, Any], items: Sequence[Item] | None = None) -> None:
        """Fail before a run on a bad k."""
        if "k" in options:
            check_k(options["k"])

    def inputs(self, item: Item, output: Output) -> tuple[set[str], list[str]] | Score:
        if not item.reference:
            return Score(error="the item has no relevant ids (reference)")
        if output.retrieved is None:
            return Score(error=NO_RETRIEVED)
        return set(item.reference), output.retrieved


class RecallAtK(_Retrieval):
    """The share of the relevant ids found in the top k (option k, default 5)."""

    name = "recall_at_k"

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        found = self.inputs(item, output)
        if isinstance(found, Score):
            return found
        k = check_k(ctx.options.get("k", DEFAULT_K))
        return Score(value=recall_at_k(*found, k), data={"k": k})


class MRR(_Retrieval):
    """1 / the rank of the first relevant id (within the top k when the option k is set)."""

    name = "mrr"

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        found = self.inputs(item, output)
        if isinstance(found, Score):
            return found
        k = ctx.options.get("k")
        return Score(value=reciprocal_rank(*found, None if k is None else check_k(k)))


class NDCG(_Retrieval):
    """Normalised discounted cumulative gain at k (option k, default 5), binary relevance."""

    name = "ndcg"

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        found = self.inputs(item, output)
        if isinstance(found, Score):
            return found
        k = check_k(ctx.options.get("k", DEFAULT_K))
        return Score(value=ndcg_at_k(*found, k), data={"k": k})
