"""Batched evaluation: a local llama.cpp model's items decode together on the continuous
batcher (``--concurrency`` slots), with a shared system prompt taken from a slot's KV cache
after the first item; the answers are the same as those of an unbatched run (concurrency 1),
item for item. Real bundled SmolLM2, eight items of the edtech example, a fresh home (and so
an empty response cache) for each run."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelatlas import evals
from modelatlas.backends.declared import facts
from modelatlas.catalog.resolve import resolve
from modelatlas.evals import records
from modelatlas.evals.plan import make_plan
from modelatlas.evals.runner import _batched

DATA = Path(__file__).resolve().parents[1] / "examples" / "edtech-support" / "test.jsonl"
SMOL = "local/smollm2-135m-instruct"


def answers(concurrency: int) -> dict[str, str]:
    system = (DATA.parent / "system.txt").read_text().strip()
    plan = make_plan(
        str(DATA), [SMOL], metrics=["f1"], limit=8, max_tokens=32, system=system, concurrency=concurrency
    )
    result = asyncio.run(evals.evaluate(plan))
    items = records.load_items(result.run_id)
    assert len(items) == 8 and not any(i.output.error for i in items)
    return {i.item_id: i.output.text for i in items}


def test_batched_answers_equal_the_unbatched_ones(tmp_path, monkeypatch):
    plan_of = make_plan(str(DATA), [SMOL], metrics=["f1"], limit=1, concurrency=4)
    assert facts(_batched(resolve(SMOL), plan_of)).parallel == 4  # decoded on 4 batch slots
    monkeypatch.setenv("MODELATLAS_HOME", str(tmp_path / "one-at-a-time"))
    alone = answers(concurrency=1)
    monkeypatch.setenv("MODELATLAS_HOME", str(tmp_path / "batched"))
    together = answers(concurrency=4)
    assert together == alone
    assert all(text.strip() for text in together.values())


def test_a_parallel_the_record_sets_is_kept():
    record = resolve(SMOL).model_copy(update={"options": {"parallel": 1}})
    plan = make_plan(str(DATA), [SMOL], metrics=["f1"], limit=1, concurrency=4)
    assert facts(_batched(record, plan)).parallel == 1
    assert facts(_batched(resolve(SMOL), make_plan(str(DATA), [SMOL], limit=1, concurrency=1))).parallel == 1
