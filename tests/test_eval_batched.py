"""Batched evaluation, opt-in: a local llama.cpp model whose record sets ``parallel`` decodes
its items together on that many continuous-batching slots (a shared system prompt taken from a
slot's KV cache after the first item); a model without it takes one item at a time, so a run's
answers never depend on which items happened to share a batch. Real bundled SmolLM2, eight
items of the edtech example."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelatlas import evals
from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.catalog.resolve import resolve
from modelatlas.evals import records
from modelatlas.evals.plan import make_plan
from modelatlas.evals.runner import _lanes
from modelatlas.loading import load_model

DATA = Path(__file__).resolve().parents[1] / "examples" / "edtech-support" / "test.jsonl"
SMOL = "local/smollm2-135m-instruct"
SLOTS = "file/smol-4-slots"


def test_a_model_with_slots_decodes_its_items_together():
    bundled = resolve(SMOL)
    user.add(ModelRecord(id=SLOTS, backend="llamacpp", location=bundled.location, options={"parallel": 4}))
    system = (DATA.parent / "system.txt").read_text().strip()
    plan = make_plan(str(DATA), [SLOTS, SMOL], metrics=["f1"], limit=8, max_tokens=24, system=system)
    models = {m: load_model(resolve(m)) for m in (SLOTS, SMOL)}  # records only: nothing loaded
    try:
        lanes = _lanes(models, plan)
    finally:
        for model in models.values():
            asyncio.run(model.aclose())
    assert lanes[SLOTS]._value == 4 and lanes[SMOL]._value == 1  # slots; one at a time
    result = asyncio.run(evals.evaluate(plan))
    items = records.load_items(result.run_id)
    assert len(items) == 16 and not any(i.output.error for i in items)
    assert all(i.output.text.strip() for i in items)
    by_arm = {m: sum(1 for i in items if i.model == m) for m in (SLOTS, SMOL)}
    assert by_arm == {SLOTS: 8, SMOL: 8}
