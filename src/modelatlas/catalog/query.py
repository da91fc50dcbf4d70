"""Search the catalog from Python, with the facets as keyword arguments.

``modelatlas.catalog.search("smol", task="chat", hosting="local")`` builds the same
:class:`~modelatlas.catalog.search.Filters` that `modelatlas catalog search` builds from its
flags and runs the same search over the same merged catalog, so the two answer alike.
"""

from __future__ import annotations

from modelatlas.catalog.catalog import load_catalog
from modelatlas.catalog.search import Filters
from modelatlas.catalog.search import search as run_search
from modelatlas.records import ModelRecord

__all__ = ["search"]


def search(
    query: str | None = None,
    *,
    task: str | None = None,
    modality: str | None = None,
    arch: str | None = None,
    license: str | None = None,
    open_weights: bool | None = None,
    hosting: str | None = None,
    provider: str | None = None,
    max_price: float | None = None,
    min_context: int | None = None,
    fits: bool = False,
    runnable: bool = False,
    collection: str | None = None,
    sort: str = "relevance",
    order: str | None = None,
    limit: int | None = 25,
) -> list[ModelRecord]:
    """The catalog's records that pass every filter, best first (``limit=None``: all of them).

    ``query`` matches words of the name fuzzily; ``hosting`` is "local" or "hosted";
    ``max_price`` is USD per 1M input tokens; ``sort`` is relevance, name, context, price_in,
    price_out or newest, ``order`` "asc" or "desc" (None: the sort's usual one); an unknown task,
    modality, architecture, provider, sort or order raises :class:`~modelatlas.errors.ConfigError`
    listing the valid values."""
    filters = Filters(
        query=query,
        task=task,
        modality=modality,
        arch=arch,
        license=license,
        open_weights=open_weights,
        hosting=hosting,
        provider=provider,
        max_price=max_price,
        min_context=min_context,
        fits=fits,
        runnable=runnable,
        collection=collection,
    )
    return run_search(load_catalog(), filters, sort=sort, limit=limit, order=order)
