"""The `improve` report as typed values: one row per approach, and the recommendation.

`improve --json` prints ``ImproveReport.model_dump(mode="json")`` and the studio's Improve page
reads the same report back from ``HOME/improve/<run_id>.json``. The JSON keeps the shape the
report had as a dict: a row whose arm has no results holds only its names and ``"missing": true``;
``invalid`` is there only for an arm that sent no few-shot examples, and ``training_seconds`` /
``training_cost`` only on a fine-tuned approach (``tests/test_json_shapes.py`` holds it to that).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from modelatlas.evals.results import DatasetInfo, MetricSummary, Number, Result

IDENTITY = ("approach", "arm", "model", "strategy")


class TunedModel(Result):
    """The fine-tune an improve run used: made now, or reused (same base, data and settings)."""

    model_id: str
    seconds: Number = None
    train_loss: Number = None
    val_loss: Number = None
    reused: bool = False


class Versus(Result):
    """An approach against the zero-shot baseline on the deciding metric, from its own side."""

    diff: Number = None
    ci_low: Number = None
    ci_high: Number = None
    p_value: Number = None
    verdict: str  # "better", "worse" or "no significant difference"


class ApproachRow(Result):
    """One approach: quality, significance against the baseline, cost, latency, prompt, training."""

    approach: str  # "zero-shot", "few-shot", "RAG", "fine-tuned", "fine-tuned + RAG"
    arm: str
    model: str
    strategy: str
    missing: bool = False  # the run has no results for this arm
    metrics: dict[str, MetricSummary] = Field(default_factory=dict)
    n: int = 0
    errors: int = 0
    cost_per_1k: Number = None
    latency_p50: Number = None
    latency_p95: Number = None
    context_tokens: Number = None
    vs_baseline: Versus | None = None  # None for the baseline itself
    examples_short: int = 0
    items_short: int = 0
    invalid: str | None = None  # why the row is left out of the recommendation
    training_seconds: Number = None
    training_cost: Number = None

    @property
    def trained(self) -> bool:
        """Whether training figures were given (a fine-tuned approach), even when unknown (None)."""
        return "training_seconds" in self.model_fields_set

    def mean(self, metric: str) -> float | None:
        stats = self.metrics.get(metric)
        return stats.mean if stats else None

    @model_serializer(mode="wrap")
    def _only_what_applies(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if self.missing:
            return {key: data[key] for key in (*IDENTITY, "missing")}
        data.pop("missing", None)
        if self.invalid is None:
            data.pop("invalid", None)
        if not self.trained:
            data.pop("training_seconds", None)
            data.pop("training_cost", None)
        return data


class ImproveReport(Result):
    """`improve`: each approach against zero-shot on one test set, and what to use."""

    run_id: str
    dataset: DatasetInfo
    metric: str | None = None  # the deciding metric (the first asked)
    metrics: list[str] = Field(default_factory=list)
    approaches: list[ApproachRow] = Field(default_factory=list)
    knowledge_base: str | None = None
    finetune: TunedModel | None = None
    notes: list[str] = Field(default_factory=list)
    recommendation: str = ""
