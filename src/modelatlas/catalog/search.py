"""Faceted search over the catalog: a fuzzy name query plus filters, sorted and limited.

Every filter narrows; an unknown value of a closed facet (task, modality, architecture,
provider, sort) is an error that lists the valid values.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from modelatlas.catalog.catalog import Catalog
from modelatlas.catalog.records import ARCHITECTURES, TASKS, ModelRecord
from modelatlas.errors import ConfigError, suggest

SORTS = ("relevance", "name", "context", "price_in", "price_out", "newest")
# Older names, still accepted (the README and scripts use them).
SORT_ALIASES = {"price": "price_in", "release": "newest"}
ORDERS = ("asc", "desc")
# Each sort's usual direction: the best match, A to Z, the longest context, the cheapest, the newest.
NATURAL_ORDER = {
    "relevance": "desc",
    "name": "asc",
    "context": "desc",
    "price_in": "asc",
    "price_out": "asc",
    "newest": "desc",
}
# Model makers: on equal relevance their own listing comes before resellers of the same model.
MAKERS = frozenset(
    [
        "local",
        "openai",
        "anthropic",
        "google",
        "meta",
        "mistral",
        "cohere",
        "deepseek",
        "alibaba",
        "minimax",
        "moonshotai",
        "nvidia",
        "perplexity",
        "xai",
        "zhipuai",
        "stepfun",
        "tencent",
        "xiaomi",
        "sakana",
        "sarvam",
    ]
)


@dataclass(frozen=True)
class Filters:
    query: str | None = None
    task: str | None = None
    modality: str | None = None
    arch: str | None = None
    license: str | None = None
    open_weights: bool | None = None
    hosting: str | None = None
    provider: str | None = None
    max_price: float | None = None
    min_context: int | None = None
    fits: bool = False
    runnable: bool = False
    collection: str | None = None


def search(
    catalog: Catalog,
    filters: Filters,
    sort: str = "relevance",
    limit: int | None = 50,
    order: str | None = None,
) -> list[ModelRecord]:
    """The records that pass every filter, sorted by ``sort`` (one of SORTS) in ``order``
    ("asc" or "desc"; None: the sort's usual direction, NATURAL_ORDER)."""
    check(catalog, filters, sort, order)
    sort = sort_name(sort)
    records: Iterable[ModelRecord] = catalog.records
    if filters.collection:
        from modelatlas.catalog.collections import members

        records = members(catalog, filters.collection)
    records = [r for r in records if _passes(r, filters)]
    scores: dict[str, float] = {}
    if filters.query:
        scores = _match(records, filters.query)
        records = [r for r in records if r.id in scores]
    descending = (order or NATURAL_ORDER[sort]) == "desc"
    how = sort if sort != "relevance" or filters.query else "discovery"
    records = _sorted(records, how, scores, descending)
    return records if limit is None else records[:limit]


def sort_name(sort: str) -> str:
    """The sort's name in SORTS (an older name, "price" or "release", becomes today's)."""
    return SORT_ALIASES.get(sort, sort)


def check(catalog: Catalog, filters: Filters, sort: str, order: str | None = None) -> None:
    """Reject unknown facet values, listing the valid ones."""
    _one_of("task", filters.task, TASKS)
    _one_of("architecture", filters.arch, ARCHITECTURES)
    _one_of("sort", sort_name(sort), SORTS)
    _one_of("order", order, ORDERS)
    _one_of("hosting", filters.hosting, ("local", "hosted"))
    if filters.modality:
        _one_of("modality", filters.modality, modalities(catalog))
    if filters.provider and filters.provider not in catalog.providers():
        near = suggest(filters.provider, catalog.providers())
        hint = (
            f"Did you mean {' or '.join(repr(n) for n in near)}?"
            if near
            else "See `modelatlas catalog providers`."
        )
        raise ConfigError(f"Unknown provider {filters.provider!r}.", hint=hint)


def modalities(catalog: Catalog) -> tuple[str, ...]:
    found: set[str] = set()
    for r in catalog.records:
        if r.modalities:
            found.update(r.modalities.input, r.modalities.output)
    return tuple(sorted(found))


def _one_of(facet: str, value: str | None, valid: Iterable[str]) -> None:
    valid = tuple(valid)
    if value is not None and value not in valid:
        raise ConfigError(f"Unknown {facet} {value!r}.", hint=f"Valid values: {', '.join(valid)}.")


def _passes(r: ModelRecord, f: Filters) -> bool:
    if f.task and f.task not in r.tasks:
        return False
    if f.modality and not (r.modalities and f.modality in (*r.modalities.input, *r.modalities.output)):
        return False
    if f.arch and r.architecture != f.arch:
        return False
    if f.license and (not r.license or f.license.lower() not in r.license.lower()):
        return False
    if f.open_weights is not None and r.open_weights is not f.open_weights:
        return False
    if f.hosting and r.hosting != f.hosting:
        return False
    if f.provider and r.provider != f.provider:
        return False
    price = price_in(r)
    if f.max_price is not None and (price is None or price > f.max_price):
        return False
    if f.min_context and (r.context_length or 0) < f.min_context:
        return False
    return not ((f.fits and r.fits is not True) or (f.runnable and not r.runnable))


def price_in(r: ModelRecord) -> float | None:
    """USD per 1M input tokens; a model that runs here costs nothing per token."""
    if r.price is not None:
        return r.price.input
    return 0.0 if r.hosting == "local" else None


def price_out(r: ModelRecord) -> float | None:
    """USD per 1M output tokens; a model that runs here costs nothing per token."""
    if r.price is not None:
        return r.price.output
    return 0.0 if r.hosting == "local" else None


# What each column sort compares; a record whose value is unknown (None) goes last either way.
_VALUES: dict[str, Callable[[ModelRecord], Any]] = {
    "name": lambda r: (r.name or r.id).lower(),
    "context": lambda r: r.context_length,
    "price_in": price_in,
    "price_out": price_out,
    "newest": lambda r: r.release_date,
}


def _sorted(
    records: list[ModelRecord], sort: str, scores: dict[str, float], descending: bool
) -> list[ModelRecord]:
    """``records`` in ``sort``'s order; ties keep the ids' order, unknown values come last."""
    if sort in ("relevance", "discovery"):
        best_first = _relevance(records, scores) if sort == "relevance" else _discovery(records)
        return best_first if descending else best_first[::-1]
    value = _VALUES[sort]
    by_id = sorted(records, key=lambda r: r.id)
    known = [r for r in by_id if value(r) is not None]
    unknown = [r for r in by_id if value(r) is None]
    return sorted(known, key=value, reverse=descending) + unknown  # stable: ties stay by id


def _relevance(records: list[ModelRecord], scores: dict[str, float]) -> list[ModelRecord]:
    return sorted(records, key=lambda r: (-scores[r.id], r.provider not in MAKERS, len(r.id), r.id))


def _discovery(records: list[ModelRecord]) -> list[ModelRecord]:
    """Relevance with no query: what runs here first, then the makers' own listings before
    resellers of the same models, then the newest; by name last. (Sorted by name before, the
    catalog opened on obscure resellers' ids.)"""
    by_name = sorted(records, key=lambda r: ((r.name or r.id).lower(), r.id))
    newest = sorted(by_name, key=lambda r: r.release_date or "", reverse=True)  # stable: ties keep names
    return sorted(newest, key=lambda r: (not r.runnable, r.provider not in MAKERS))


# -- fuzzy query ---------------------------------------------------------------------------------

_SPLIT = re.compile(r"[^a-z0-9.]+")


def tokens(text: str) -> list[str]:
    return [t for t in _SPLIT.split(text.lower()) if t]


@lru_cache(maxsize=8192)
def _record_tokens(model_id: str, name: str, family: str) -> frozenset[str]:
    return frozenset(tokens(f"{model_id} {name} {family}"))


def _match(records: list[ModelRecord], query: str) -> dict[str, float]:
    """Score each record against every query token: exact, prefix, substring, then close spelling."""
    wanted = tokens(query)
    if not wanted:
        return {r.id: 0.0 for r in records}
    bags = {r.id: _record_tokens(r.id, r.name or "", r.family or "") for r in records}
    vocabulary = sorted(set().union(*bags.values())) if bags else []
    close = {w: set(difflib.get_close_matches(w, vocabulary, n=12, cutoff=0.75)) for w in wanted}
    scores: dict[str, float] = {}
    for rid, bag in bags.items():
        total = 0.0
        for word in wanted:
            best = _token_score(word, bag, close[word])
            if best == 0.0:
                break
            total += best
        else:
            scores[rid] = total
    return scores


def _token_score(word: str, bag: frozenset[str], close: set[str]) -> float:
    if word in bag:
        return 3.0
    if any(t.startswith(word) for t in bag):
        return 2.0
    if len(word) >= 3 and any(word in t for t in bag):
        return 1.5
    return 1.0 if bag & close else 0.0
