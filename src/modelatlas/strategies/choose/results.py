"""What `modelatlas choose` decided, and from what (``--json`` prints a Decision)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from modelatlas.loadtest.results import LevelResult


class Constraints(BaseModel):
    """The use case: what a candidate must be, and what the decision may spend."""

    model_config = ConfigDict(extra="forbid")

    task: str | None = "chat"
    modality: str | None = None
    open_weights: bool | None = None
    max_price: float | None = None  # USD per 1M input tokens
    min_context: int | None = None
    fits: bool = False
    runnable: bool = False
    max_latency_ms: float | None = None  # p95 end-to-end under load, at the chosen concurrency
    budget_usd: float | None = None  # what the whole decision may spend on hosted calls
    candidates: int = 5
    models: list[str] = Field(default_factory=list)  # given: skip the shortlist's search


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    hosted: bool
    why: list[str]  # why it made the list


class LeftOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    why: str


class Shortlist(BaseModel):
    model_config = ConfigDict(extra="forbid")

    searched: int  # records in the catalog
    matched: int  # records that pass the constraints
    candidates: list[Candidate]
    left_out: list[LeftOut] = Field(default_factory=list)  # matched, but not tested: why


class Point(BaseModel):
    """One candidate on the three axes; quality with its interval."""

    model_config = ConfigDict(extra="forbid")

    model: str
    quality: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    cost_per_1k: float  # USD per 1,000 requests like the dataset's, from the eval's metered cost
    p95_ms: float | None  # end-to-end, under the load test's concurrency
    tokens_per_s: float | None = None  # all streams together, under that load
    error_rate: float | None = None
    on_front: bool = False
    eligible: bool = True
    why_not: str | None = None  # when not eligible: e.g. over --max-latency-ms


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    created_at: str
    dataset: str
    metric: str
    metric_reason: str = ""
    constraints: Constraints
    shortlist: Shortlist
    run_id: str | None
    concurrency: int
    points: list[Point]
    load: dict[str, LevelResult] = Field(default_factory=dict)
    pick: str | None
    tied_with: list[str] = Field(default_factory=list)  # not separable from the pick on this data
    recommendation: str
    spent_usd: float = 0.0
