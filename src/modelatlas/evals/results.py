"""What an evaluation produces, as typed values: the run summary, its parts, the dry-run estimate,
two runs compared and the leaderboard across runs.

The reports, the studio, `runs`, `improve` and the leaderboard read these attributes; `--json`
prints ``model_dump(mode="json")``, whose keys, key order and value types are the shapes the CLI
printed when these were dicts (``tests/test_json_shapes.py`` holds them to the stored examples).
Numbers are plain and finite: NaN, infinities and numpy scalars become None or Python numbers on
the way in, so a summary always serialises with ``allow_nan=False``.

Unknown keys are ignored when a stored summary is read back (``RunSummary.model_validate``), so a
file or row written by an older or newer version still reads.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from modelatlas.evals.types import RunInfo


def finite(value: Any) -> float | None:
    """A plain, finite float, or None (numpy scalars, NaN and infinities included)."""
    if value is None:
        return None
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    value = float(value)
    return value if math.isfinite(value) else None


Number = Annotated[float | None, BeforeValidator(finite)]


class Result(BaseModel):
    """Base of the result models: extra keys (from another version) are ignored when read."""

    model_config = ConfigDict(extra="ignore")


class DatasetInfo(Result):
    path: str
    hash: str
    n: int


class MetricSummary(Result):
    """One metric of one arm: the aggregate, its 95% bootstrap CI, and how many items counted."""

    mean: Number = None
    ci_low: Number = None
    ci_high: Number = None
    errors: int = 0  # items whose score is an error
    n: int = 0  # items scored ok


class Latency(Result):
    """Seconds per item over the calls that were made (cached answers and errors left out)."""

    p50: Number = None
    p90: Number = None
    p95: Number = None
    p99: Number = None
    ttft_p50: Number = None


class Tokens(Result):
    input: int = 0
    output: int = 0


class ArmSummary(Result):
    """One arm (a model with a strategy): quality per metric, speed, tokens, cost, prompt size."""

    model: str  # the arm's label: the model id, with "@strategy" unless zero-shot
    model_id: str
    strategy: str
    n: int
    errors: int = 0
    metrics: dict[str, MetricSummary] = Field(default_factory=dict)
    latency: Latency = Field(default_factory=Latency)
    tokens: Tokens = Field(default_factory=Tokens)
    tokens_per_s: Number = None
    cost_usd: float = 0.0
    cached: int = 0
    context_tokens: Number = None  # mean prompt tokens (few-shot and RAG make prompts longer)
    dropped: int = 0  # examples or chunks the context guard left out
    examples_short: int = 0  # few-shot examples fewer than asked, in all
    items_short: int = 0  # items that got fewer examples than asked
    items_without_examples: int = 0
    # A speech arm's audio (seconds, all items) and real-time factor (processing time over audio
    # time on the calls made; below 1 is faster than real time). Left out of a text arm's dump.
    audio_seconds: Number = None
    real_time_factor: Number = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("audio_seconds", "real_time_factor"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class PairwiseTest(Result):
    """Two arms on one metric, paired over the items both scored: difference, CI, p-value, verdict."""

    a: str
    b: str
    metric: str
    diff: Number = None
    ci_low: Number = None
    ci_high: Number = None
    p_value: Number = None
    test: str  # "mcnemar" or "permutation"
    significant: bool = False
    verdict: str  # "a better", "b better" or "no significant difference"


class JudgeWinRate(Result):
    """A pairwise judge's verdicts on two arms: A's win rate (ties count half) with its CI."""

    a: str
    b: str
    metric: str
    a_win_rate: Number = None
    ci_low: Number = None
    ci_high: Number = None
    n: int = 0
    errors: int = 0


class RunSummary(Result):
    """A run's statistics: arms best first, paired tests between arms, pairwise judge rates."""

    run_id: str
    name: str | None = None
    status: str
    dataset: DatasetInfo
    models: list[ArmSummary] = Field(default_factory=list)
    pairwise: list[PairwiseTest] = Field(default_factory=list)
    judge_pairwise: list[JudgeWinRate] = Field(default_factory=list)

    @property
    def metric_names(self) -> list[str]:
        """The metrics scored per item, in the order asked (the first ranks the arms)."""
        return list(self.models[0].metrics) if self.models else []

    @property
    def arm_labels(self) -> list[str]:
        return [m.model for m in self.models]

    def arm(self, label: str) -> ArmSummary | None:
        return next((m for m in self.models if m.model == label), None)


class RunResult(Result):
    """What :func:`modelatlas.evals.evaluate` returns: the run as stored, and its summary."""

    run: RunInfo
    summary: RunSummary

    @property
    def run_id(self) -> str:
        return self.run.id


class EstimateDataset(Result):
    path: str
    n: int


class ArmEstimate(Result):
    """One arm of a dry run: calls, prompt tokens, output tokens (expected and at most), USD."""

    model: str
    strategy: str
    calls: int
    input_tokens: int
    output_tokens_expected: int
    output_tokens_max: int
    cost_usd_expected: float = 0.0
    cost_usd_max: float = 0.0
    priced: bool  # False when a hosted model's price is unknown (the costs then read 0)
    # A speech arm: the seconds of audio it would transcribe (what it is billed by; its token
    # counts are 0). Left out of a text arm's dump.
    audio_seconds: Number = None
    # An image arm: the pictures it would make (items x images per item; what it is billed by).
    # Left out of the other arms' dumps.
    images: int | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("audio_seconds", "images"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class Estimate(Result):
    """`eval --dry-run`: what the plan would cost, per arm, before anything is sent."""

    dataset: EstimateDataset
    arms: list[ArmEstimate] = Field(default_factory=list)


class ComparisonRow(Result):
    """One arm and metric in two runs; the paired test's numbers only when the data is the same."""

    arm: str
    metric: str
    a: Number = None
    b: Number = None
    diff: Number = None
    ci_low: Number = None
    ci_high: Number = None
    p_value: Number = None
    verdict: str | None = None  # set with the CI and p-value, when the runs could be paired

    @property
    def paired(self) -> bool:
        return self.verdict is not None

    @model_serializer(mode="wrap")
    def _unpaired_without_test(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """An unpaired row has no CI, p-value or verdict keys at all, as `runs compare` printed."""
        data = handler(self)
        if not self.paired:
            for key in ("ci_low", "ci_high", "p_value", "verdict"):
                data.pop(key, None)
        return data


class RunComparison(Result):
    """`runs compare`: two runs' settings, whether their data is the same, and the rows."""

    a: RunInfo
    b: RunInfo
    same_dataset: bool
    rows: list[ComparisonRow] = Field(default_factory=list)


class LeaderboardEntry(Result):
    """One arm of one run on one metric, as the leaderboards and their charts show it."""

    run_id: str
    dataset: str  # the dataset's file name
    label: str
    model_id: str
    strategy: str
    mean: Number = None
    ci_low: Number = None
    ci_high: Number = None
    n: int = 0
    errors: int = 0
    cost_per_1k: Number = None
    latency_p50: Number = None
    tokens_per_s: Number = None
    # Answers from the cache (no latency measured): the studio's charts say so; not in the JSON.
    cached: int = Field(default=0, exclude=True)


class Leaderboard(Result):
    """`runs leaderboard`: entries best first, with the datasets and metrics one could pick."""

    entries: list[LeaderboardEntry] = Field(default_factory=list)
    datasets: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    metric: str | None = None
    dataset: str | None = None  # the one dataset ranked (never several at once)
    items: int | None = None  # its size in the runs ranked (runs of another size are left out)
    best: str | None = None  # the first entry's label, only when it is significantly ahead of every other
    leaders: list[str] = Field(default_factory=list)  # labels the data cannot separate from the first
    notes: list[str] = Field(default_factory=list)  # what was left out, and why
