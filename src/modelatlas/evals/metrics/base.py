"""The metric contract and registry.

A metric scores one item's output (``score``) and says how per-item scores aggregate
(``aggregate``, by default the mean of the values that are not errors). Metrics are looked up by
name; built-ins and plugins both come through the entry-point group ``modelatlas.metrics``
(``name = "module:factory"``, a callable that returns a Metric).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from modelatlas.evals.types import Item, Output, Score

if TYPE_CHECKING:
    from modelatlas.backends.model import Model


@dataclass
class Context:
    """What a metric may use besides the item and the output."""

    model: Model | None = None  # the model under test
    judge: Model | None = None  # the LLM judge (judge_* metrics)
    embedder: Model | None = None  # the embedding model (semantic_similarity)
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"pattern": ..., "k": 5}


class Metric:
    name: ClassVar[str] = ""
    needs_reference: ClassVar[bool] = True
    binary: ClassVar[bool] = False  # values are 0 or 1 (McNemar applies)
    higher_is_better: ClassVar[bool] = True
    needs_judge: ClassVar[bool] = False
    needs_choices: ClassVar[bool] = False

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        raise NotImplementedError

    def aggregate(self, scores: Sequence[Score]) -> float | None:
        values = [s.value for s in scores if s.ok]
        return sum(values) / len(values) if values else None
