"""`choose`: constraints and a dataset in, a decision out. The shortlist comes from the
catalog; quality from an evaluation of every candidate on the dataset (the eval runner: stored,
cached, with intervals and pairwise tests); load from a load test of each candidate on the
dataset's prompts at one concurrency; then the Pareto front and a pick in plain words.

Before anything is sent, the dry-run estimate of the evaluation plus the most the load tests
can cost is checked against ``budget_usd``; a hosted candidate with no known price is refused
when a budget is set, since its cost could not be bounded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from modelatlas.errors import ConfigError
from modelatlas.evals.results import RunSummary
from modelatlas.formats import usd
from modelatlas.loadtest.results import LevelResult
from modelatlas.strategies.choose.pareto import mark_front, pick
from modelatlas.strategies.choose.recommend import recommendation
from modelatlas.strategies.choose.results import Constraints, Decision, Point, Shortlist
from modelatlas.strategies.choose.shortlist import shortlist

Say = Callable[[str], None]


async def choose(
    dataset: str | Path,
    constraints: Constraints,
    *,
    concurrency: int = 4,
    duration_s: float = 20.0,
    max_tokens: int = 128,
    load_requests: int | None = None,
    limit: int | None = None,
    metric: str | None = None,
    judge: str | None = None,
    system: str | None = None,
    say: Say = lambda _: None,
) -> Decision:
    """``metric``: the primary metric (default: picked from the data, see
    :func:`~modelatlas.evals.metric_choice.primary_metric`); ``judge``: the model that
    scores for judge metrics; ``system``: the system prompt of every eval item."""
    short = await asyncio.to_thread(shortlist, constraints)
    if not short.candidates:
        raise _nothing_to_test(short)
    ids = [c.model for c in short.candidates]
    say(f"Shortlist: {', '.join(ids)} ({short.matched} of {short.searched} catalog models match).")
    plan, why = await asyncio.to_thread(_plan, str(dataset), ids, max_tokens, limit, metric, judge, system)
    say(f"Metric: {plan_metric(plan)} ({why}).")
    await _check_budget(plan, short, constraints.budget_usd, dataset, concurrency, max_tokens, load_requests)

    from modelatlas import evals

    say(f"Evaluating {len(ids)} candidates on {plan.dataset.n} items...")
    result = await evals.evaluate(plan)
    summary = result.summary
    spent = sum(arm.cost_usd for arm in summary.models)
    load: dict[str, LevelResult] = {}
    for model in ids:
        say(f"Load test of {model}: {concurrency} streams for {duration_s:g} s...")
        left = None if constraints.budget_usd is None else max(constraints.budget_usd - spent, 0.0)
        level, cost = await _load(
            model, dataset, concurrency, duration_s, max_tokens, load_requests, left, limit
        )
        load[model], spent = level, spent + cost
    decision = _decide(dataset, constraints, short, summary, result.run_id, concurrency, load, spent)
    decision.metric_reason = why
    return decision


def _plan(dataset: str, ids: list[str], max_tokens: int, limit, metric: str | None, judge, system):
    from modelatlas.evals.datasets import load_dataset
    from modelatlas.evals.metric_choice import primary_metric
    from modelatlas.evals.plan import make_plan

    why = "given with --metric"
    if metric is None:
        metric, why = primary_metric(load_dataset(dataset, limit=limit))
    plan = make_plan(
        dataset, ids, metrics=[metric], judge=judge, limit=limit, max_tokens=max_tokens, system=system,
        name="choose",
    )  # fmt: skip
    return plan, why


def plan_metric(plan) -> str:
    return next(iter(plan.metrics))


async def _check_budget(
    plan, short: Shortlist, budget, dataset, concurrency, max_tokens, load_requests
) -> None:
    if budget is None:
        return
    from modelatlas.catalog.resolve import resolve
    from modelatlas.evals.estimate import estimate
    from modelatlas.loadtest.plan import HOSTED_REQUEST_CAP, cost_bound, workload

    found = await estimate(plan)
    unpriced = [a.model for a in found.arms if not a.priced]
    bound = sum(a.cost_usd_max for a in found.arms)
    prompts = await asyncio.to_thread(workload, dataset)
    for c in short.candidates:
        if c.hosted:
            most = cost_bound(
                resolve(c.model), prompts, (load_requests or HOSTED_REQUEST_CAP) + 1, max_tokens
            )
            if most is None:
                unpriced.append(c.model)
            else:
                bound += most
    if unpriced:
        raise ConfigError(
            f"No price is known for {', '.join(sorted(set(unpriced)))}, "
            f"so --budget-usd {budget:g} cannot be checked.",
            hint="Leave those models out (--model), or drop --budget-usd.",
        )
    if bound > budget:
        raise ConfigError(
            f"The decision may cost up to {usd(bound)} on hosted calls, over --budget-usd {budget:g}.",
            hint="Use fewer --candidates, --limit the items, lower --max-tokens, or raise the budget.",
        )


async def _load(model, dataset, concurrency, duration_s, max_tokens, requests, budget, limit):
    from modelatlas.loadtest.plan import run_loadtest

    report, warmup = await run_loadtest(
        model, dataset, [concurrency], duration_s, max_tokens,
        max_requests=requests, budget_usd=budget, limit=limit,
    )  # fmt: skip
    level = report.levels[0]
    return level, level.cost_usd + warmup.cost_usd


def _decide(dataset, constraints, short, summary: RunSummary, run_id, concurrency, load, spent) -> Decision:
    metric = summary.metric_names[0]
    points = []
    for arm in summary.models:
        m = arm.metrics.get(metric)
        level = load.get(arm.model_id)
        point = Point(
            model=arm.model_id,
            quality=m.mean if m else None,
            ci_low=m.ci_low if m else None,
            ci_high=m.ci_high if m else None,
            n=m.n if m else 0,
            cost_per_1k=1000 * arm.cost_usd / arm.n if arm.n else 0.0,
            p95_ms=level.e2e_ms.p95 if level else None,
            tokens_per_s=level.tokens_per_s if level else None,
            error_rate=level.error_rate if level else None,
        )
        _eligibility(point, constraints)
        points.append(point)
    mark_front(points)
    chosen, tied = pick(points, metric, summary.pairwise)
    return Decision(
        id=uuid.uuid4().hex[:12],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dataset=str(dataset),
        metric=metric,
        constraints=constraints,
        shortlist=short,
        run_id=run_id,
        concurrency=concurrency,
        points=points,
        load=load,
        pick=chosen.model if chosen else None,
        tied_with=[p.model for p in tied],
        recommendation=recommendation(chosen, tied, points, metric, summary.pairwise, concurrency),
        spent_usd=spent,
    )


def _eligibility(point: Point, c: Constraints) -> None:
    if point.error_rate is not None and point.error_rate > 0.05:
        point.eligible, point.why_not = False, f"{point.error_rate:.0%} of its requests failed under load"
    elif c.max_latency_ms is not None and (point.p95_ms is None or point.p95_ms > c.max_latency_ms):
        shown = "unknown" if point.p95_ms is None else f"{point.p95_ms:,.0f} ms"
        point.eligible, point.why_not = (
            False,
            f"p95 latency {shown} is over --max-latency-ms {c.max_latency_ms:g}",
        )


def _nothing_to_test(short: Shortlist) -> ConfigError:
    reasons = "; ".join(f"{x.model}: {x.why}" for x in short.left_out[:5])
    return ConfigError(
        f"No candidate can be tested: {short.matched} catalog models match the constraints"
        + (f", none testable here ({reasons})." if reasons else "."),
        hint="Relax the constraints (--task, --max-price, --min-context...), set a provider key, "
        "or name models with --model.",
    )
