"""The Pareto front over quality (higher is better), cost per 1,000 requests and p95 latency
under load (lower is better), and the pick: the best quality among the eligible points, tied
with every eligible point the pairwise test cannot separate from it."""

from __future__ import annotations

from collections.abc import Sequence

from modelatlas.evals.leaderboard import separated
from modelatlas.evals.results import PairwiseTest
from modelatlas.strategies.choose.results import Point


def _axes(p: Point) -> tuple[float, float, float]:
    inf = float("inf")
    quality = p.quality if p.quality is not None else -inf
    return quality, p.cost_per_1k, p.p95_ms if p.p95_ms is not None else inf


def dominates(a: Point, b: Point) -> bool:
    """``a`` is at least as good as ``b`` on every axis and better on one."""
    qa, ca, la = _axes(a)
    qb, cb, lb = _axes(b)
    return qa >= qb and ca <= cb and la <= lb and (qa > qb or ca < cb or la < lb)


def mark_front(points: Sequence[Point]) -> None:
    """Set ``on_front`` on the eligible points that no other eligible point dominates."""
    eligible = [p for p in points if p.eligible]
    for p in points:
        p.on_front = p.eligible and not any(dominates(q, p) for q in eligible if q is not p)


def separable(a: str, b: str, metric: str, tests: Sequence[PairwiseTest]) -> PairwiseTest | None:
    """The pairwise test of arms ``a`` and ``b`` on ``metric``, if the run made one."""
    return next((t for t in tests if t.metric == metric and {t.a, t.b} == {a, b}), None)


def pick(
    points: Sequence[Point], metric: str, tests: Sequence[PairwiseTest]
) -> tuple[Point | None, list[Point]]:
    """The recommended point and those it cannot be told apart from (:func:`separated`).
    Among a tied group, the
    cheaper and then the faster point wins: equal quality as far as the data can tell, so the
    other two axes decide."""
    eligible = [p for p in points if p.eligible and p.quality is not None]
    if not eligible:
        return None, []
    best = max(eligible, key=lambda p: p.quality or 0.0)
    tied = []
    for p in eligible:
        if p is best:
            continue
        if not separated(separable(best.model, p.model, metric, tests)):
            tied.append(p)
    group = [best, *tied]
    chosen = min(group, key=lambda p: (p.cost_per_1k, _axes(p)[2], -(p.quality or 0.0)))
    return chosen, [p for p in group if p is not chosen]
