"""Per-level figures from the requests of that level."""

from __future__ import annotations

from collections.abc import Sequence

from modelatlas.loadtest.results import LevelResult, Percentiles, RequestSample


def percentiles(values: Sequence[float], scale: float = 1.0) -> Percentiles:
    """p50, p95, p99 and the mean of ``values`` times ``scale`` (all None when there are none)."""
    if not values:
        return Percentiles()
    import numpy as np

    data = np.asarray(values, dtype=float) * scale
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return Percentiles(p50=float(p50), p95=float(p95), p99=float(p99), mean=float(data.mean()))


def summarise(concurrency: int, samples: Sequence[RequestSample]) -> LevelResult:
    good = [s for s in samples if s.ok]
    if samples:
        start = min(s.started_s for s in samples)
        duration = max(s.started_s + s.e2e_s for s in samples) - start
    else:
        duration = 0.0
    output = sum(s.output_tokens for s in good)
    errors = [s.error for s in samples if s.error]
    return LevelResult(
        concurrency=concurrency,
        duration_s=duration,
        requests=len(samples),
        succeeded=len(good),
        errors=len(errors),
        rate_limited=sum(1 for s in samples if s.status == 429),
        input_tokens=sum(s.input_tokens for s in good),
        output_tokens=output,
        cost_usd=sum(s.cost_usd for s in samples),
        no_usage=sum(1 for s in good if not s.usage_reported),
        ttft_ms=percentiles([s.ttft_s for s in good if s.ttft_s is not None], 1000),
        itl_ms=percentiles([x for s in good if (x := s.itl_s) is not None], 1000),
        e2e_ms=percentiles([s.e2e_s for s in good], 1000),
        stream_tokens_per_s=percentiles([x for s in good if (x := s.stream_tokens_per_s) is not None]),
        tokens_per_s=output / duration if duration > 0 else 0.0,
        requests_per_s=len(samples) / duration if duration > 0 else 0.0,
        error_examples=list(dict.fromkeys(errors))[:3],
    )
