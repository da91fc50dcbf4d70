"""The `improve` report: each approach against the zero-shot baseline, and a recommendation."""

from __future__ import annotations

from typing import Any

from modelatlas.evals.results import ArmSummary, RunSummary
from modelatlas.evals.types import arm_label
from modelatlas.formats import usd
from modelatlas.strategies.improve import BASELINE, Approach, Setup
from modelatlas.strategies.results import ApproachRow, ImproveReport, Versus


def build_report(
    summary: RunSummary | dict[str, Any], setup: Setup, price_per_hour: float | None = None
) -> ImproveReport:
    """Rows per approach (quality, significance against the baseline, cost, latency, prompt size,
    training) and a recommendation in plain words derived from those numbers. ``summary`` may
    also be a summary read back from `eval --json`."""
    summary = RunSummary.model_validate(summary)
    metrics = summary.metric_names
    metric = metrics[0] if metrics else None
    base_label = arm_label(setup.approaches[0].model, setup.approaches[0].strategy)
    rows = [
        _row(
            a, summary.arm(arm_label(a.model, a.strategy)), metric, base_label, summary, setup, price_per_hour
        )
        for a in setup.approaches
    ]
    return ImproveReport(
        run_id=summary.run_id,
        dataset=summary.dataset,
        metric=metric,
        metrics=metrics,
        approaches=rows,
        knowledge_base=setup.kb,
        finetune=setup.finetune,
        notes=setup.notes,
        recommendation=recommend(rows, metric),
    )


def _row(
    approach: Approach, arm: ArmSummary | None, metric, base_label, summary: RunSummary, setup, price_per_hour
) -> ApproachRow:
    label = arm_label(approach.model, approach.strategy)
    names = {"approach": approach.name, "arm": label, "model": approach.model, "strategy": approach.strategy}
    if arm is None:
        return ApproachRow(**names, missing=True)
    row: dict[str, Any] = names | {
        "metrics": arm.metrics,
        "n": arm.n,
        "errors": arm.errors,
        "cost_per_1k": arm.cost_usd / max(arm.n, 1) * 1000,
        "latency_p50": arm.latency.p50,
        "latency_p95": arm.latency.p95,
        "context_tokens": arm.context_tokens,
        "vs_baseline": None if label == base_label else _against(summary, label, base_label, metric),
        "examples_short": arm.examples_short,
        "items_short": arm.items_short,
    }
    if arm.items_short and arm.items_without_examples == arm.n:
        # Its prompts were zero-shot's: comparing it with zero-shot would measure nothing.
        row["invalid"] = f"{approach.strategy} sent no examples at all (it ran as zero-shot)"
        setup.notes.append(f"{approach.name}: {row['invalid']}; left out of the recommendation.")
    elif arm.items_short:
        setup.notes.append(
            f"{approach.name}: {arm.items_short} of {arm.n} items got fewer examples than "
            f"{approach.strategy} asks for ({arm.examples_short} missing: the context window "
            "or the pool)."
        )
    tuned = setup.finetune if approach.name.startswith("fine-tuned") else None
    if tuned:
        row["training_seconds"] = tuned.seconds
        row["training_cost"] = (tuned.seconds or 0) / 3600 * price_per_hour if price_per_hour else None
    return ApproachRow(**row)


def _against(summary: RunSummary, label: str, base: str, metric: str | None) -> Versus | None:
    """The paired comparison of ``label`` with the baseline on ``metric``, from the label's side."""
    for p in summary.pairwise:
        if p.metric != metric or {p.a, p.b} != {label, base}:
            continue
        flip = p.a != label
        diff = None if p.diff is None else (-p.diff if flip else p.diff)
        low, high = (p.ci_high, p.ci_low) if flip else (p.ci_low, p.ci_high)
        if flip and low is not None:
            low, high = -low, -high
        verdict = p.verdict
        if p.significant:
            verdict = "better" if (p.verdict == "a better") != flip else "worse"
        return Versus(diff=diff, ci_low=low, ci_high=high, p_value=p.p_value, verdict=verdict)
    return None


def recommend(rows: list[ApproachRow], metric: str | None) -> str:
    """Plain words: which approach to use and why, from quality, significance and cost."""
    if metric is None or not rows or rows[0].missing:
        return "No results to compare."
    base = rows[0]
    better = [
        r
        for r in rows[1:]
        if not r.invalid and r.vs_baseline is not None and r.vs_baseline.verdict == "better"
    ]
    if not better:
        return (
            f"None of the approaches beat {BASELINE} significantly on {metric} over {base.n} items. "
            f"Keep {BASELINE}: it is the cheapest ({_money(base.cost_per_1k)} per 1,000 queries) and "
            "fastest. A larger test set or a stronger base model may separate them."
        )
    best = max(better, key=lambda r: r.mean(metric))
    cheapest = min(better, key=lambda r: (r.cost_per_1k, r.context_tokens or 0, r.training_seconds or 0))
    pick = cheapest if _close(cheapest, best, metric) else best
    gain = pick.vs_baseline
    words = (
        f"Use {pick.approach}: it improves {metric} by {gain.diff:+.3f} "
        f"(95% CI {gain.ci_low:+.3f} to {gain.ci_high:+.3f}) over {BASELINE}, "
        f"at {_money(pick.cost_per_1k)} per 1,000 queries against {_money(base.cost_per_1k)}"
    )
    if pick.context_tokens and base.context_tokens:
        words += f" and {pick.context_tokens / base.context_tokens:.1f}x the prompt tokens"
    if pick.training_seconds:
        words += f", plus {pick.training_seconds / 60:.1f} minutes of training once"
    words += "."
    if pick is not best:
        top = best.mean(metric)
        words += f" {best.approach} scores higher ({top:.3f}) but costs more, for a gain within the noise."
    return words


def _close(a: ApproachRow, b: ApproachRow, metric: str) -> bool:
    """Whether ``a``'s interval overlaps ``b``'s mean: too close to call on this data."""
    high = a.metrics[metric].ci_high
    return a is b or (high is not None and high >= b.mean(metric))


def _money(value: float | None) -> str:
    return usd(value, unknown="?")
