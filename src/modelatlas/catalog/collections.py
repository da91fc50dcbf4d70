"""Collections: curated groups of models, plus one per provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelatlas.catalog.catalog import Catalog
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ConfigError, suggest


@dataclass(frozen=True)
class Collection:
    name: str
    description: str
    test: Callable[[ModelRecord], bool]


CURATED = [
    Collection("Azure OpenAI", "OpenAI models deployed on Microsoft Azure.", lambda r: r.provider == "azure"),
    Collection(
        "Open weights",
        "Models whose weights you can download and run yourself.",
        lambda r: r.open_weights is True,
    ),
    Collection(
        "Runs on this machine",
        "Local models that can run here now, within this machine's memory.",
        lambda r: r.hosting == "local" and r.runnable and r.fits is not False,
    ),
    Collection(
        "Embeddings",
        "Models that turn text into vectors, for search and RAG.",
        lambda r: "embeddings" in r.tasks,
    ),
    Collection(
        "Reasoning", "Models that think before they answer.", lambda r: r.capabilities.reasoning is True
    ),
    Collection(
        "Tool calling",
        "Models that can call functions you define.",
        lambda r: r.capabilities.tool_calling is True,
    ),
]


def collections(catalog: Catalog) -> list[tuple[Collection, int]]:
    """Every collection with its member count: the curated ones first, then one per provider."""
    found = [(c, sum(1 for r in catalog.records if c.test(r))) for c in CURATED]
    for provider, count in catalog.providers().items():
        found.append((_provider_collection(provider), count))
    return found


def members(catalog: Catalog, name: str) -> list[ModelRecord]:
    """The records of the collection called ``name`` (a curated name or a provider id)."""
    for c in CURATED:
        if c.name.lower() == name.lower():
            return [r for r in catalog.records if c.test(r)]
    if name in catalog.providers():
        return [r for r in catalog.records if r.provider == name]
    names = [c.name for c in CURATED] + list(catalog.providers())
    near = suggest(name, names)
    hint = (
        f"Did you mean {' or '.join(repr(n) for n in near)}?"
        if near
        else "See `modelatlas catalog collections`."
    )
    raise ConfigError(f"Unknown collection {name!r}.", hint=hint)


def _provider_collection(provider: str) -> Collection:
    return Collection(provider, f"Models from {provider}.", lambda r, p=provider: r.provider == p)
