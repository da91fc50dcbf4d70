"""Retrieval metrics: recall@k, MRR and nDCG@k, with binary relevance.

The relevant ids are the item's ``reference``; the retrieved ids are ``Output.retrieved``, best
first (a RAG strategy fills it). A retrieved id listed twice counts once, at its first rank.

Each takes the option ``k`` (the cut-off), 5 by default for all three, from the CLI and from
Python alike. ``mrr`` was the exception before options were typed: MRR@5 from the CLI (which
always sent k=5) and unbounded from Python. It is MRR@5 everywhere now, the CLI's behaviour
(the one the tests pinned, and the usual cut-off of the other two); ``k=None`` asks for the
unbounded rank.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import field_validator

from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.options import MetricOptions
from modelatlas.evals.types import Item, Output, Score

DEFAULT_K = 5
NO_RETRIEVED = "the strategy returned no retrieved ids"


def check_k(value: Any) -> int:
    """``value`` if it is a whole number of at least 1 (not a bool, not a string), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number of at least 1, not {value!r}")
    return value


class TopK(MetricOptions):
    k: int = DEFAULT_K  # only the top k retrieved ids count

    @field_validator("k", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> int:
        return check_k(value)


class MRROptions(MetricOptions):
    k: int | None = DEFAULT_K  # None: the first relevant id counts at any rank

    @field_validator("k", mode="before")
    @classmethod
    def _whole_or_none(cls, value: Any) -> int | None:
        return None if value is None else check_k(value)


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
    bounds = (0.0, 1.0)

    def inputs(self, item: Item, output: Output) -> tuple[set[str], list[str]] | Score:
        if not item.reference:
            return Score(error="the item has no relevant ids (reference)")
        if output.retrieved is None:
            return Score(error=NO_RETRIEVED)
        return set(item.reference), output.retrieved


class RecallAtK(_Retrieval):
    """The share of the relevant ids found in the top k (option k, default 5)."""

    name = "recall_at_k"
    Options = TopK
    options: TopK

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        found = self.inputs(item, output)
        if isinstance(found, Score):
            return found
        k = self.for_context(ctx).options.k
        return Score(value=recall_at_k(*found, k), data={"k": k})


class MRR(_Retrieval):
    """1 / the rank of the first relevant id within the top k (option k, default 5; None: any rank)."""

    name = "mrr"
    Options = MRROptions
    options: MRROptions

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        found = self.inputs(item, output)
        if isinstance(found, Score):
            return found
        return Score(value=reciprocal_rank(*found, self.for_context(ctx).options.k))


class NDCG(_Retrieval):
    """Normalised discounted cumulative gain at k (option k, default 5), binary relevance."""

    name = "ndcg"
    Options = TopK
    options: TopK

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        found = self.inputs(item, output)
        if isinstance(found, Score):
            return found
        k = self.for_context(ctx).options.k
        return Score(value=ndcg_at_k(*found, k), data={"k": k})
