"""Leaderboard entries from run summaries: one per arm of a run, for one metric.

A finished run's summary does not change, so it is kept in memory; a running one is read anew.
"""

from __future__ import annotations

from pathlib import Path

from modelatlas.evals import records
from modelatlas.evals.finish import summary_for
from modelatlas.evals.results import Leaderboard, LeaderboardEntry, RunSummary
from modelatlas.evals.types import RunInfo

_summaries: dict[tuple, RunSummary] = {}


def summary_of(run: RunInfo) -> RunSummary:
    """`summary_for` the run, from memory when it is finished and was read before."""
    key = (run.id, run.status, run.finished_at)
    if key in _summaries:
        return _summaries[key]
    summary = summary_for(run.id)
    if run.status != "running":
        _summaries[key] = summary
    return summary


def arm_entries(summary: RunSummary, metric: str) -> list[LeaderboardEntry]:
    """The arms that scored ``metric``, as rows the tables and the charts read."""
    entries = []
    for arm in summary.models:
        stats = arm.metrics.get(metric)
        if stats is None:
            continue
        entries.append(
            LeaderboardEntry(
                run_id=summary.run_id,
                dataset=Path(summary.dataset.path).name,
                label=arm.model,
                model_id=arm.model_id,
                strategy=arm.strategy,
                mean=stats.mean,
                ci_low=stats.ci_low,
                ci_high=stats.ci_high,
                n=arm.n,
                errors=arm.errors,
                cost_per_1k=arm.cost_usd / max(arm.n, 1) * 1000,
                latency_p50=arm.latency.p50,
                tokens_per_s=arm.tokens_per_s,
            )
        )
    return entries


def across_runs(dataset: str | None, metric: str | None, limit: int = 200) -> Leaderboard:
    """Every run's arms on ``dataset`` (a file name) and ``metric``, best first, with the choices.

    With no metric given (or one no matching run has), the first metric of the newest matching run.
    A failed run (every answer an error) and an arm that answered nothing rank nowhere."""
    from modelatlas.evals.metrics.registry import get_metric

    runs = [r for r in records.list_runs(limit) if r.status != "failed"]
    datasets = sorted({Path(r.dataset_path).name for r in runs})
    chosen = [r for r in runs if dataset is None or Path(r.dataset_path).name == dataset]
    metrics = list(dict.fromkeys(m for r in chosen for m in r.metrics))
    if metric not in metrics:
        metric = metrics[0] if metrics else None
    entries: list[LeaderboardEntry] = []
    for run in chosen:
        if metric in run.metrics:
            entries += [e for e in arm_entries(summary_of(run), metric) if e.errors < e.n]
    higher = get_metric(metric).higher_is_better if metric else True
    scored = sorted((e for e in entries if e.mean is not None), key=lambda e: e.mean, reverse=higher)
    entries = scored + [e for e in entries if e.mean is None]
    return Leaderboard(entries=entries, datasets=datasets, metrics=metrics, metric=metric)
