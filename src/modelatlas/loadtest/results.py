"""What a load test measured: one row per request, summed up per concurrency level.

The latencies are those guidellm and llmperf report, defined the same way: time to first token
(request sent to the first streamed text), end-to-end latency (sent to the last byte), and
inter-token latency, the decode time per token after the first, ``(e2e - ttft) / (tokens - 1)``.
Percentiles are numpy's default (linear interpolation between the two nearest samples).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RequestSample(BaseModel):
    """One request. ``status`` is the HTTP status (200 for a stream that ended well; 0 when no
    answer came: a refused connection, a timeout); ``error`` says what went wrong, if anything."""

    model_config = ConfigDict(extra="forbid")

    started_s: float  # since the level began
    status: int = 200
    error: str | None = None
    ttft_s: float | None = None
    e2e_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    usage_reported: bool = True  # False: the server sent no usage; output tokens are streamed chunks

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def itl_s(self) -> float | None:
        if self.ttft_s is None or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    @property
    def stream_tokens_per_s(self) -> float | None:
        """Tokens per second this one stream got, its first token's wait included."""
        return self.output_tokens / self.e2e_s if self.ok and self.e2e_s > 0 and self.output_tokens else None


class Percentiles(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None


class LevelResult(BaseModel):
    """One concurrency level: ``concurrency`` requests kept in flight for ``duration_s``."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int
    duration_s: float  # from the first request sent to the last answer received
    requests: int  # sent and finished, whatever the outcome
    succeeded: int
    errors: int
    rate_limited: int  # answered 429
    input_tokens: int  # as the server's usage reported them, successful requests only
    output_tokens: int
    cost_usd: float
    no_usage: int = 0  # successful requests whose server reported no usage (tokens counted as chunks)
    ttft_ms: Percentiles
    itl_ms: Percentiles
    e2e_ms: Percentiles
    stream_tokens_per_s: Percentiles  # per request
    tokens_per_s: float  # output tokens of every stream together, per second of the level
    requests_per_s: float
    error_examples: list[str] = Field(default_factory=list)  # a few distinct messages

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class LoadReport(BaseModel):
    """A load test of one model on one workload (``--json`` prints this)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    target: str  # the base URL requests went to, or "in-process" for a hosted model's client
    dataset: str
    prompts: int
    max_tokens: int
    duration_s: float  # asked, per level
    max_requests: int | None
    levels: list[LevelResult]
    started_at: str
    note: str | None = None  # e.g. the request cap that ended a level early

    def level(self, concurrency: int) -> LevelResult | None:
        return next((lv for lv in self.levels if lv.concurrency == concurrency), None)
