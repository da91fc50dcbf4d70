"""`--dry-run`: tokens and cost of a plan, estimated before anything is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from modelatlas.audio_length import audio_seconds
from modelatlas.backends.declared import facts
from modelatlas.errors import MissingAPIKeyError
from modelatlas.evals.image_plan import draws, image_arm
from modelatlas.evals.plan import Plan
from modelatlas.evals.results import ArmEstimate, Estimate, EstimateDataset
from modelatlas.evals.speech_plan import transcribes
from modelatlas.records import ModelRecord


async def estimate(plan: Plan) -> Estimate:
    """Per arm: calls, prompt tokens, output tokens (expected and at most), and USD cost.

    Each arm's model is opened only for its tokenizer and closed when its arm is counted; the
    counting (blocking tokenizer calls) runs in a worker thread."""
    from modelatlas.catalog.resolve import resolve

    rows = []
    for model_id, strategy in plan.arms:
        record = await asyncio.to_thread(resolve, model_id)
        if draws(facts(record)):  # billed by the picture: no tokenizer to open
            rows.append(image_arm(plan, model_id, record))
            continue
        async with _counter(record) as count:
            rows.append(await asyncio.to_thread(_arm, plan, model_id, strategy, record, count))
    return Estimate(dataset=EstimateDataset(path=plan.dataset.path, n=plan.dataset.n), arms=rows)


Counter = Callable[[str], int]


def _arm(plan: Plan, model_id: str, strategy, record: ModelRecord, count: Counter) -> ArmEstimate:
    if transcribes(facts(record)):
        return _speech_arm(plan, model_id, strategy.name, record)
    prompt_tokens = 0
    expected_out = 0
    for item in plan.dataset.items:
        prompt = strategy.preview(item, record.mode, plan.prompt_setup).prompt
        text = prompt if isinstance(prompt, str) else "\n".join(m.text for m in prompt)
        prompt_tokens += count(text) + (0 if isinstance(prompt, str) else 4 * len(prompt))
        expected_out += min(
            plan.max_tokens, max(count(r) for r in item.reference) if item.reference else plan.max_tokens
        )
    times = plan.samples_per_item  # each item is answered this many times, each call priced
    prompt_tokens, expected_out = prompt_tokens * times, expected_out * times
    most_out = plan.max_tokens * plan.dataset.n * times
    price = record.price
    return ArmEstimate(
        model=model_id,
        strategy=strategy.name,
        calls=plan.dataset.n * times,
        input_tokens=prompt_tokens,
        output_tokens_expected=expected_out,
        output_tokens_max=most_out,
        cost_usd_expected=price.cost(prompt_tokens, expected_out) if price else 0.0,
        cost_usd_max=price.cost(prompt_tokens, most_out) if price else 0.0,
        priced=price is not None or record.hosting == "local",
    )


def _speech_arm(plan: Plan, model_id: str, strategy: str, record: ModelRecord) -> ArmEstimate:
    """A speech model is billed by the minute of audio: the items' durations from their headers
    (an item whose length cannot be read counts nothing, and the estimate says it is unpriced)."""
    lengths = [audio_seconds(item.audio.read()) if item.audio else None for item in plan.dataset.items]
    seconds = sum(x for x in lengths if x) * plan.samples_per_item
    price = record.price
    cost = price.cost(0, 0, audio_seconds=seconds) if price else 0.0
    known = all(x is not None for x in lengths)
    return ArmEstimate(
        model=model_id,
        strategy=strategy,
        calls=plan.dataset.n * plan.samples_per_item,
        input_tokens=0,
        output_tokens_expected=0,
        output_tokens_max=0,
        cost_usd_expected=cost,
        cost_usd_max=cost,
        priced=known and (price is not None or record.hosting == "local"),
        audio_seconds=round(seconds, 3),
    )


@asynccontextmanager
async def _counter(record: ModelRecord) -> AsyncIterator[Counter]:
    """The model's own tokenizer when it can be had without a key; else about 4 characters a token."""
    from modelatlas.loading import load_model

    try:
        model = load_model(record)
    except MissingAPIKeyError:
        yield lambda text: max(1, len(text) // 4)
        return
    try:
        yield model.count_tokens
    finally:
        await model.aclose()
