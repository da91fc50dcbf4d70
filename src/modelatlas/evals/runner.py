"""The evaluation runner: every arm answers every item, concurrently, each result stored at once.

A run is resumable: `kill -9` loses nothing that was finished, and resuming redoes nothing that
was. Per model, calls in flight are capped by the Model's concurrency limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from itertools import combinations

from modelatlas.backends.model import Model
from modelatlas.backends.pool import ModelSettings, shared_pool
from modelatlas.errors import ConfigError
from modelatlas.evals import owner, records
from modelatlas.evals.answer import answer, score_all
from modelatlas.evals.image_plan import draw, draws, load_first
from modelatlas.evals.metrics.base import Context
from modelatlas.evals.plan import Plan
from modelatlas.evals.types import ItemResult, PairResult, RunInfo, Score, arm_label

Progress = Callable[[str], None]


def start_run(plan: Plan) -> RunInfo:
    info = RunInfo(
        id=records.new_run_id(),
        name=plan.name,
        dataset_path=plan.dataset.path,
        dataset_hash=plan.dataset.hash,
        dataset_n=plan.dataset.n,
        models=plan.models,
        strategies=[s.name for s in plan.strategies],
        metrics=list(plan.metrics),
        judge=plan.judge,
        params=plan.params(),
    )
    records.create_run(info)
    return records.get_run(info.id)


def pending(plan: Plan, run_id: str) -> list[tuple]:
    """(model, strategy, index, item) of every answer not yet in the run."""
    done = records.done_keys(run_id)
    return [  # item by item, each arm in turn: models that share a thread take turns on it
        (m, s, i, item)
        for i, item in enumerate(plan.dataset.items)
        for m, s in plan.arms
        if (m, s.name, item.id) not in done
    ]


async def execute(plan: Plan, run: RunInfo, progress: Progress | None = None) -> None:
    """Answer and score what is pending, then the pairwise judgements; mark the run done.

    This process owns the run while it goes (refused if another live process does) and keeps
    its heartbeat fresh. A run whose every answer is an error is marked failed, not done."""
    owner.claim(run.id)
    heart = asyncio.create_task(owner.beating(run.id))
    try:
        async with AsyncExitStack() as opened:  # the models this run opens, closed after it
            await _work(plan, run, progress, opened)
    except BaseException:
        records.set_status(run.id, "interrupted")
        raise
    finally:
        heart.cancel()
    records.set_status(run.id, "failed" if records.all_failed(run.id) else "done")


async def _work(plan: Plan, run: RunInfo, progress: Progress | None, opened: AsyncExitStack) -> None:
    todo = pending(plan, run.id)
    busy = {m for m, *_ in todo}
    models = {m: await _load(m, plan, opened, batch=m in busy) for m in plan.models}
    # the metrics carry their own options (make_plan gave each the ones it takes)
    ctx = Context(
        judge=await _load(plan.judge, plan, opened) if plan.judge else None,
        embedder=await _embedder(plan, opened),
    )
    await load_first(models, ctx.judge)  # an image run's models, one at a time (evals.image_plan)
    for strategy in plan.strategies:
        await strategy.start(plan.prompt_setup)  # once per run (few-shot:K:similar ranks the pool)
    lanes = _lanes(models, plan)
    jobs = [
        _in_lane(lanes[m], _one(run.id, models[m], s, i, item, plan, ctx, progress)) for m, s, i, item in todo
    ]
    await asyncio.gather(*jobs)
    await _pairs(run.id, plan, ctx, progress)


def _lanes(models: dict[str, Model], plan: Plan) -> dict[str, asyncio.Semaphore]:
    """How many items may be in progress at once, per model.

    A model with batch slots (see :func:`_load`) gets a lane of its slots: its items decode
    together, sharing cached prompt prefixes. Other models whose backend declares the same
    concurrency key share one lane of its declared limit: local llama.cpp models without slots
    share one compute thread that already uses every core, so they take one item at a time,
    together (more in flight would only queue). Hosted and other models get a lane of the
    plan's concurrency each.
    """
    from modelatlas.backends.declared import facts

    shared: dict[str, asyncio.Semaphore] = {}
    lanes = {}
    for m, model in models.items():
        declared = facts(model.record)
        if declared.batches and declared.parallel > 1:
            lanes[m] = asyncio.Semaphore(declared.parallel)
            continue
        key = declared.concurrency_key or f"model:{m}"
        if key not in shared:
            shared[key] = asyncio.Semaphore(declared.max_connections or plan.concurrency)
        lanes[m] = shared[key]
    return lanes


async def _in_lane(lane: asyncio.Semaphore, job) -> None:
    async with lane:
        await job


def pair_jobs(plan: Plan, run_id: str) -> int:
    arms = [arm_label(m, s.name) for m, s in plan.arms]
    return len(plan.pair_metrics) * len(list(combinations(arms, 2))) * plan.dataset.n


async def _one(
    run_id: str, model: Model, strategy, index: int, item, plan: Plan, ctx: Context, progress
) -> None:
    if draws(model.backend.facts(model.record)):  # an image model: its pictures, kept with the run
        output = await draw(run_id, model, index, item, plan)
    else:
        output = await answer(model, strategy, item, plan)
    item_ctx = Context(model=model, judge=ctx.judge, embedder=ctx.embedder)
    scores = await score_all(item, output, plan.item_metrics, item_ctx)
    records.save_item(
        ItemResult(
            run_id=run_id,
            model=model.id,
            strategy=strategy.name,
            item_id=item.id,
            index=index,
            output=output,
            scores=scores,
        )
    )
    if progress:
        progress(arm_label(model.id, strategy.name))


async def _pairs(run_id: str, plan: Plan, ctx: Context, progress) -> None:
    if not plan.pair_metrics:
        return
    results = {(r.model, r.strategy, r.item_id): r for r in records.load_items(run_id)}
    done = {(p.metric, p.a, p.b, p.item_id) for p in records.load_pairs(run_id)}
    items = {item.id: item for item in plan.dataset.items}
    arms = [(m, s.name) for m, s in plan.arms]
    jobs = []
    for name, metric in plan.pair_metrics.items():
        for (ma, sa), (mb, sb) in combinations(arms, 2):
            a, b = arm_label(ma, sa), arm_label(mb, sb)
            for item_id, item in items.items():
                if (name, a, b, item_id) not in done:
                    ra, rb = results.get((ma, sa, item_id)), results.get((mb, sb, item_id))
                    jobs.append(_pair(run_id, name, metric, a, b, item, ra, rb, ctx, progress))
    await asyncio.gather(*jobs)


async def _pair(run_id, name, metric, a, b, item, ra, rb, ctx: Context, progress) -> None:
    if ra is None or rb is None or ra.output.error or rb.output.error:
        score = Score(error="one of the two arms has no output for this item")
    else:
        try:
            score = await metric.compare(item, ra.output, rb.output, ctx)
        except ConfigError as exc:
            score = Score(error=exc.message)
    records.save_pair(PairResult(run_id=run_id, metric=name, a=a, b=b, item_id=item.id, score=score))
    if progress:
        progress(f"{name}: {a} vs {b}")


async def _load(model_id: str, plan: Plan, opened: AsyncExitStack, batch: bool = False) -> Model:
    """The model ``model_id`` from the process's pool, released when the run ends.

    With ``batch`` (it has items to answer), a model whose backend batches and whose record
    sets no ``parallel`` gets :data:`EVAL_SLOTS` slots, where its answers cannot depend on what
    else shares a batch (``batch_invariant``): its items then decode together, the same
    answers as one at a time. A record's own ``parallel`` is kept as it is."""
    from modelatlas.catalog.records import Price
    from modelatlas.catalog.resolve import resolve

    record = await asyncio.to_thread(resolve, model_id)
    if batch:
        record = await asyncio.to_thread(_with_slots, record)
    if plan.price_per_hour is not None and record.hosting in ("local", None) and record.price is None:
        record = record.model_copy(update={"price": Price(per_hour=plan.price_per_hour)})
    settings = ModelSettings(max_concurrency=plan.concurrency, cache=True)
    return await opened.enter_async_context(shared_pool().using(record, settings))


EVAL_SLOTS = 4  # as llama-server's default: slots beyond the cores' worth add little here


def _with_slots(record):
    from modelatlas.backends.declared import batch_invariant, facts, with_parallel

    if "parallel" in record.options or not facts(record).batches or not batch_invariant(record):
        return record
    return with_parallel(record, EVAL_SLOTS)


async def _embedder(plan: Plan, opened: AsyncExitStack) -> Model | None:
    if "semantic_similarity" not in plan.metrics:
        return None
    from modelatlas.catalog.resolve import resolve

    record = await asyncio.to_thread(resolve, plan.embedder)
    return await opened.enter_async_context(shared_pool().using(record))
