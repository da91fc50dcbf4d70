"""Semantic similarity: the cosine of the output's and the references' embeddings.

The runner gives the embedding model as ``ctx.embedder`` (``local/all-minilm-l6-v2`` by
default). The value is the best cosine over the references, so in -1..1 (usually 0..1).
"""

from __future__ import annotations

import math

from modelatlas.errors import ConfigError
from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.text import NO_REFERENCE
from modelatlas.evals.types import Item, Output, Score


def cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


class SemanticSimilarity(Metric):
    name = "semantic_similarity"
    bounds = (-1.0, 1.0)

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if ctx.embedder is None:
            raise ConfigError(
                "semantic_similarity needs an embedding model, and none was given.",
                hint="Pass one as Context(embedder=...), e.g. load_model('local/all-minilm-l6-v2').",
            )
        if not item.reference:
            return Score(error=NO_REFERENCE)
        result = await ctx.embedder.embed([output.text, *item.reference])
        answer, *references = result.vectors
        values = [cosine(answer, r) for r in references]
        return Score(value=max(values), data={"embedder": ctx.embedder.id})
