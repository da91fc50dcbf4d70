"""Leaderboard entries from run summaries: one per arm of a run, for one metric.

A finished run's summary does not change, so it is kept in memory; a running one is read anew.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from modelatlas.evals import records
from modelatlas.evals.finish import summary_for
from modelatlas.evals.results import Leaderboard, LeaderboardEntry, PairwiseTest, RunSummary
from modelatlas.evals.types import RunInfo, arm_label

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
                cached=arm.cached,
            )
        )
    return entries


def across_runs(dataset: str | None, metric: str | None, limit: int = 200) -> Leaderboard:
    """The arms of the runs on one dataset, ranked on one metric, best first, with the choices.

    Numbers from different datasets are never ranked together: with no ``dataset`` (a file
    name), the dataset of the newest run. Within it, only runs of its largest version (same
    items, by content hash) count, and each model and strategy
    shows once, from its newest run. With no metric given (or one no matching run has), the
    first metric of the newest matching run. A failed run (every answer an error) and an arm
    that answered nothing rank nowhere. ``best`` is set only when the first entry is
    significantly ahead of every other (:func:`separated`); otherwise ``leaders`` lists the
    entries tied with it."""
    from modelatlas.evals.metrics.registry import get_metric

    runs = [r for r in records.list_runs(limit) if r.status != "failed"]
    datasets = sorted({Path(r.dataset_path).name for r in runs})
    if dataset is None and runs:
        dataset = Path(runs[0].dataset_path).name
    chosen = [r for r in runs if Path(r.dataset_path).name == dataset]
    notes: list[str] = []
    chosen, items = _one_version(chosen, notes)
    metrics = list(dict.fromkeys(m for r in chosen for m in r.metrics))
    if metric not in metrics:
        metric = metrics[0] if metrics else None
    entries, tests = _latest_arms(chosen, metric, notes)
    higher = get_metric(metric).higher_is_better if metric else True
    scored = sorted((e for e in entries if e.mean is not None), key=lambda e: e.mean or 0.0, reverse=higher)
    leaders = _leaders(scored, tests, higher)
    best = scored[0].label if scored and leaders == [scored[0].label] and len(scored) > 1 else None
    return Leaderboard(
        entries=scored + [e for e in entries if e.mean is None],
        datasets=datasets, metrics=metrics, metric=metric, dataset=dataset, items=items,
        best=best, leaders=leaders if len(leaders) > 1 else [], notes=notes,
    )  # fmt: skip


def _one_version(runs: list[RunInfo], notes: list[str]) -> tuple[list[RunInfo], int | None]:
    """The runs on the dataset's largest version (by content hash; the most used when tied)
    among finished runs, and its item count: a quick run on a few items does not rank beside
    the full set."""
    if not runs:
        return runs, None
    finished = [r for r in runs if r.status == "done"] or runs  # an interrupted run is incomplete
    counts = Counter(r.dataset_hash for r in finished)
    sizes = {r.dataset_hash: r.dataset_n for r in runs}
    version = max(counts, key=lambda h: (sizes[h], counts[h]))
    kept = [r for r in runs if r.dataset_hash == version]
    if len(kept) < len(runs):
        other = sorted({r.dataset_n for r in runs if r.dataset_hash != version})
        notes.append(
            f"{len(runs) - len(kept)} runs on other versions or subsets of this dataset "
            f"({', '.join(map(str, other))} items) are left out: their items differ."
        )
    return kept, sizes[version]


def _latest_arms(runs: list[RunInfo], metric: str | None, notes: list[str]):
    """One entry per model, strategy and run settings (system prompt, template, generation
    settings: a different prompt is a different contender), from the newest run that has it
    (``runs`` are newest first), and the pairwise tests of those runs. Two entries that would
    share a label get their run id added to it."""
    seen: dict[tuple[str, str], LeaderboardEntry] = {}
    tests: list[tuple[str, PairwiseTest]] = []
    older = 0
    for run in runs:
        if metric not in run.metrics:
            continue
        summary = summary_of(run)
        tests += [(run.id, t) for t in summary.pairwise if t.metric == metric]
        settings = json.dumps(run.params, sort_keys=True, default=str)
        for e in arm_entries(summary, metric):
            if e.errors >= e.n:
                continue
            if (e.model_id, e.strategy, settings) in seen:
                older += 1
            else:
                seen[(e.model_id, e.strategy, settings)] = e
    labels = Counter(e.label for e in seen.values())
    for key, e in seen.items():
        if labels[e.label] > 1:
            seen[key] = e.model_copy(update={"label": f"{e.label} ({e.run_id})"})
    if older:
        notes.append(
            f"{older} older results of the same model, strategy and settings are not shown: "
            "each row is its newest run."
        )
    return list(seen.values()), tests


def separated(test: PairwiseTest | None) -> bool:
    """The paired bootstrap interval leaves out 0 and the exact test (McNemar or permutation)
    has p < 0.05. On a dozen items the percentile bootstrap alone is too eager (an interval
    without 0 beside a permutation p of 0.17 was seen on the example dataset). Shared by the
    Benchmarks view and `choose`."""
    if test is None or not test.significant:
        return False
    return test.p_value is None or test.p_value < 0.05


def _leaders(
    scored: list[LeaderboardEntry], tests: list[tuple[str, PairwiseTest]], higher: bool
) -> list[str]:
    """The first entry's label and those of every entry the data cannot separate from it: two
    arms of one run by that run's paired tests; arms of different runs only when their 95%
    intervals do not overlap (no paired test across runs)."""
    if not scored:
        return []
    top = scored[0]
    tied = [top.label]
    for e in scored[1:]:
        if e.run_id == top.run_id:
            pair = {arm_label(top.model_id, top.strategy), arm_label(e.model_id, e.strategy)}
            test = next((t for run, t in tests if run == top.run_id and {t.a, t.b} == pair), None)
            apart = test is not None and separated(test)
        else:
            low, high = (top.ci_low, e.ci_high) if higher else (e.ci_low, top.ci_high)
            apart = low is not None and high is not None and low > high
        if not apart:
            tied.append(e.label)
    return tied
