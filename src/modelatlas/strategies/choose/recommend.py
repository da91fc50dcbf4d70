"""The decision in plain words: what to pick, why, and where the data cannot tell."""

from __future__ import annotations

from collections.abc import Sequence

from modelatlas.evals.results import PairwiseTest
from modelatlas.formats import usd
from modelatlas.strategies.choose.pareto import separable, separated
from modelatlas.strategies.choose.results import Point


def money(value: float) -> str:
    """Money as everywhere else (modelatlas.formats)."""
    return usd(value)


def quality(p: Point) -> str:
    if p.quality is None:
        return "no score"
    if p.ci_low is None or p.ci_high is None:
        return f"{p.quality:.3f} (n={p.n})"
    return f"{p.quality:.3f} [{p.ci_low:.3f}, {p.ci_high:.3f}] (n={p.n})"


def latency(p: Point) -> str:
    return "not measured" if p.p95_ms is None else f"{p.p95_ms:,.0f} ms"


def recommendation(
    chosen: Point | None,
    tied: Sequence[Point],
    points: Sequence[Point],
    metric: str,
    tests: Sequence[PairwiseTest],
    concurrency: int,
) -> str:
    if chosen is None:
        reasons = (
            "; ".join(f"{p.model}: {p.why_not}" for p in points if p.why_not) or "no candidate was scored"
        )
        return f"No candidate meets the constraints ({reasons})."
    lines = [
        f"Pick {chosen.model}: {metric} {quality(chosen)}, {money(chosen.cost_per_1k)} per 1,000 requests, "
        f"p95 latency {latency(chosen)} at {concurrency} concurrent requests"
        + (", on the Pareto front of quality, cost and latency." if chosen.on_front else ".")
    ]
    if tied:
        names = ", ".join(f"{p.model} ({_p(separable(chosen.model, p.model, metric, tests))})" for p in tied)
        lines.append(
            f"The data cannot separate it from {names} on {metric} (paired tests not significant at 0.05): "
            "it is picked for being cheaper or faster, not better. "
            "More items would be needed to tell them apart."
        )
    for p in points:
        if p is chosen or p in tied:
            continue
        if not p.eligible:
            lines.append(f"{p.model} is out: {p.why_not}.")
            continue
        test = separable(chosen.model, p.model, metric, tests)
        if test is not None and separated(test) and test.diff is not None:
            lines.append(
                f"{chosen.model} is significantly ahead of {p.model} on {metric} "
                f"(difference {abs(test.diff):.3f}, {_p(test)}, {test.test})."
            )
    return " ".join(lines)


def _p(test: PairwiseTest | None) -> str:
    if test is None:
        return "not compared"
    return "p not computed" if test.p_value is None else f"p={test.p_value:.3g}"
