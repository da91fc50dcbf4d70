"""Turn a run's item results into the :class:`RunSummary` every report reads.

Its JSON shape is fixed (the CLI prints it for ``--json``); see :mod:`modelatlas.evals.results`.
Means come from each metric's own ``aggregate`` (so corpus metrics are right) and intervals from a
seeded bootstrap that recomputes that aggregate on resampled items. No NaN is ever emitted: a
missing number is None.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from modelatlas.evals import stats
from modelatlas.evals.metrics.base import Metric
from modelatlas.evals.results import (
    ArmSummary,
    DatasetInfo,
    JudgeWinRate,
    Latency,
    MetricSummary,
    PairwiseTest,
    RunSummary,
    Tokens,
)
from modelatlas.evals.types import ItemResult, PairResult, RunInfo, Score, arm_label

NO_DIFFERENCE = "no significant difference"


def summarize(
    run: RunInfo,
    results: list[ItemResult],
    metrics: dict[str, Metric],
    pairs: Sequence[PairResult] = (),
    seed: int = 0,
    *,
    resamples: int = stats.RESAMPLES,
) -> RunSummary:
    """The run's summary: per-arm metrics with CIs, latency, tokens, cost, and pairwise tests."""
    arms = _group_by_arm(results)
    names = _item_metrics(metrics, results, pairs)
    models = [_arm_summary(rs, {k: metrics[k] for k in names}, seed, resamples) for rs in arms.values()]
    if names:
        models = _rank(models, names, metrics)
    order = [m.model for m in models]
    pairwise = [
        _compare(a, b, name, metrics[name], arms, seed, resamples)
        for a, b in itertools.combinations(order, 2)
        for name in names
    ]
    return RunSummary(
        run_id=run.id,
        name=run.name,
        status=run.status,
        dataset=DatasetInfo(path=run.dataset_path, hash=run.dataset_hash, n=run.dataset_n),
        models=models,
        pairwise=pairwise,
        judge_pairwise=_judge_pairwise(pairs, seed, resamples),
    )


def _group_by_arm(results: list[ItemResult]) -> dict[str, list[ItemResult]]:
    arms: dict[str, list[ItemResult]] = {}
    for r in results:
        arms.setdefault(arm_label(r.model, r.strategy), []).append(r)
    return arms


def _item_metrics(metrics: dict[str, Metric], results: list[ItemResult], pairs) -> list[str]:
    """Metric names scored per item (a pairwise judge metric lives in ``judge_pairwise``)."""
    scored = {name for r in results for name in r.scores}
    pair_only = {p.metric for p in pairs} - scored
    return [name for name in metrics if name not in pair_only]


def _stat(metric: Metric, scores: list[Score]):
    """``indices -> aggregate`` on those scores; plain means take a numpy shortcut."""
    if type(metric).aggregate is Metric.aggregate:
        np = stats._numpy()
        ok = np.array([s.ok for s in scores], dtype=bool)
        values = np.array([s.value if s.ok else 0.0 for s in scores], dtype=float)

        def mean(indices):
            count = ok[indices].sum()
            return float(values[indices].sum() / count) if count else None

        return mean
    return lambda indices: metric.aggregate([scores[i] for i in indices])


def _metric_summary(
    metric: Metric, results: list[ItemResult], name: str, seed: int, resamples: int
) -> MetricSummary:
    scores = [r.scores[name] for r in results if name in r.scores]  # unscored items are left out
    low, high = stats.bootstrap_ci(len(scores), _stat(metric, scores), resamples=resamples, seed=seed)
    return MetricSummary(
        mean=metric.aggregate(scores) if scores else None,
        ci_low=low,
        ci_high=high,
        errors=sum(1 for s in scores if s.error is not None),
        n=sum(1 for s in scores if s.ok),
    )


def _arm_summary(
    results: list[ItemResult], metrics: dict[str, Metric], seed: int, resamples: int
) -> ArmSummary:
    first = results[0]
    live = [r.output for r in results if not r.output.cached and r.output.error is None]
    latency = stats.percentiles([o.latency_s for o in live])
    ttft = stats.percentiles([o.ttft_s for o in live], (50,))
    seconds = sum(o.latency_s or 0.0 for o in live)
    produced = sum(o.usage.output_tokens for o in live)
    return ArmSummary(
        model=arm_label(first.model, first.strategy),
        model_id=first.model,
        strategy=first.strategy,
        n=len(results),
        errors=sum(1 for r in results if r.output.error is not None),
        metrics={
            name: _metric_summary(metric, results, name, seed, resamples) for name, metric in metrics.items()
        },
        latency=Latency(
            p50=latency[50], p90=latency[90], p95=latency[95], p99=latency[99], ttft_p50=ttft[50]
        ),
        tokens=Tokens(
            input=sum(r.output.usage.input_tokens for r in results),
            output=sum(r.output.usage.output_tokens for r in results),
        ),
        tokens_per_s=produced / seconds if live and seconds > 0 else None,
        cost_usd=sum(r.output.usage.cost_usd for r in results),
        cached=sum(1 for r in results if r.output.cached),
        # Prompt size (few-shot and RAG make prompts longer) and what the context guard left out.
        context_tokens=_mean([r.output.prompt_tokens for r in results if r.output.prompt_tokens is not None]),
        dropped=sum(r.output.dropped for r in results),
        # Few-shot: examples fewer than asked (any reason), and on how many items.
        examples_short=sum(r.output.examples_short for r in results),
        items_short=sum(1 for r in results if r.output.examples_short),
        items_without_examples=sum(1 for r in results if r.output.examples == 0),
        **_speech(results),
    )


def _speech(results: list[ItemResult]) -> dict[str, float]:
    """A speech arm's audio seconds and real-time factor (over the calls made, not cache hits)."""
    heard = [r.output for r in results if r.output.usage.audio_seconds]
    if not heard:
        return {}
    live = [o for o in heard if not o.cached and o.latency_s]
    live_audio = sum(o.usage.audio_seconds for o in live)
    rtf = sum(o.latency_s or 0.0 for o in live) / live_audio if live_audio else None
    return {"audio_seconds": sum(o.usage.audio_seconds for o in heard), "real_time_factor": rtf}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rank(models: list[ArmSummary], names: list[str], metrics: dict[str, Metric]) -> list[ArmSummary]:
    """Best first by the first metric, ties broken by the next ones; no value goes last."""

    def key(m: ArmSummary):
        parts = []
        for name in names:
            sign = -1.0 if metrics[name].higher_is_better else 1.0
            mean = m.metrics[name].mean
            parts.append((mean is None, sign * round(mean, 6) if mean is not None else 0.0))
        return parts

    return sorted(models, key=key)


def _compare(a: str, b: str, name: str, metric: Metric, arms, seed: int, resamples: int) -> PairwiseTest:
    """Paired comparison of two arms on one metric, over the items both scored ok."""
    by_item_a = {r.item_id: s for r in arms[a] if (s := r.scores.get(name)) is not None and s.ok}
    by_item_b = {r.item_id: s for r in arms[b] if (s := r.scores.get(name)) is not None and s.ok}
    common = [i for i in by_item_a if i in by_item_b]
    sa, sb = [by_item_a[i] for i in common], [by_item_b[i] for i in common]
    diff, low, high = stats.paired_bootstrap(
        len(common), _stat(metric, sa), _stat(metric, sb), resamples=resamples, seed=seed
    )
    va, vb = [s.value for s in sa], [s.value for s in sb]
    if not common:
        p_value = None
    elif metric.binary:
        p_value = stats.mcnemar(va, vb)
    else:
        p_value = stats.permutation_test(va, vb, seed=seed)
    significant = low is not None and high is not None and (low > 0 or high < 0)
    verdict = NO_DIFFERENCE
    if significant and diff is not None:
        verdict = "a better" if (diff > 0) == metric.higher_is_better else "b better"
    return PairwiseTest(
        a=a,
        b=b,
        metric=name,
        diff=diff,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        test="mcnemar" if metric.binary else "permutation",
        significant=significant,
        verdict=verdict,
    )


def _judge_pairwise(pairs: Sequence[PairResult], seed: int, resamples: int) -> list[JudgeWinRate]:
    """Win rate of A over B per (a, b, metric); verdicts given as (b, a) are turned around."""
    groups: dict[tuple[str, str, str], list[Score]] = {}
    for p in pairs:
        if (p.b, p.a, p.metric) in groups:
            flipped = None if p.score.value is None else 1.0 - p.score.value
            groups[(p.b, p.a, p.metric)].append(p.score.model_copy(update={"value": flipped}))
        else:
            groups.setdefault((p.a, p.b, p.metric), []).append(p.score)
    rows = []
    for (a, b, name), scores in groups.items():
        values = [s.value for s in scores if s.ok]
        stat = _stat(Metric(), [Score(value=v) for v in values])
        low, high = stats.bootstrap_ci(len(values), stat, resamples=resamples, seed=seed)
        rate = sum(values) / len(values) if values else None
        errors = sum(1 for s in scores if s.error is not None)
        rows.append(
            JudgeWinRate(
                a=a, b=b, metric=name, a_win_rate=rate, ci_low=low, ci_high=high, n=len(values), errors=errors
            )
        )
    return rows
