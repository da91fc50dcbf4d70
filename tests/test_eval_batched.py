"""Batched evaluation: a local llama.cpp model with items to answer decodes them together on
continuous-batching slots, and its answers are exactly those it gives one item at a time.

That holds because llama.cpp is built and loaded so that each token's logits do not depend on
what else shares its batch (``llama_adapter.batch_invariant``: no llamafile sgemm, no tiled
product, no repacked weights); the answers are compared with a run of the same file through
llama-cpp-python's own one-at-a-time path (a record with ``parallel: 1``). Real bundled
SmolLM2, 16 items of the edtech example, 48 tokens each, greedy: long enough that a last-bit
difference in the logits shows as a different answer (1 of 16 did before the build changed)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from modelatlas import evals
from modelatlas.backends import llamacpp_batch
from modelatlas.backends.declared import batch_invariant
from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.catalog.resolve import resolve
from modelatlas.evals import records
from modelatlas.evals.plan import make_plan
from modelatlas.evals.runner import EVAL_SLOTS, _lanes, _with_slots
from modelatlas.loading import load_model
from modelatlas.store.db import session
from modelatlas.store.schema import CachedResponse, RunItem

DATA = Path(__file__).resolve().parents[1] / "examples" / "edtech-support" / "test.jsonl"
SMOL = "local/smollm2-135m-instruct"
ONE = "file/smol-one-at-a-time"
GEMMA = "local/gemma-3-270m"
SYSTEM = (DATA.parent / "system.txt").read_text().strip()


def answers(model: str, limit: int = 16) -> dict[str, str]:
    plan = make_plan(str(DATA), [model], metrics=["f1"], limit=limit, max_tokens=48, system=SYSTEM)
    result = asyncio.run(evals.evaluate(plan))
    items = records.load_items(result.run_id)
    assert len(items) == limit and not any(i.output.error for i in items)
    return {i.item_id: i.output.text for i in items}


def test_the_build_is_batch_invariant():
    assert batch_invariant(resolve(SMOL)), (
        "llama-cpp-python was built with llamafile's sgemm (LLAMAFILE = 1 in its system info): "
        "`make install` rebuilds it with -DGGML_LLAMAFILE=OFF"
    )


def test_a_busy_model_gets_slots_and_one_without_items_or_with_its_own_setting_does_not():
    bundled = resolve(SMOL)
    slotted = _with_slots(bundled)
    assert slotted.options["parallel"] == EVAL_SLOTS
    own = bundled.model_copy(update={"options": {"parallel": 1}})
    assert _with_slots(own).options == {"parallel": 1}  # a record's own setting is kept
    plan = make_plan(str(DATA), [SMOL], metrics=["f1"], limit=2)
    models = {SMOL: load_model(slotted)}  # the record only: nothing loaded
    try:
        assert _lanes(models, plan)[SMOL]._value == EVAL_SLOTS
    finally:
        asyncio.run(models[SMOL].aclose())


def test_batched_answers_equal_the_one_at_a_time_answers():
    bundled = resolve(SMOL)
    user.add(ModelRecord(id=ONE, backend="llamacpp", location=bundled.location, options={"parallel": 1}))
    llamacpp_batch.peak = 0
    together = answers(SMOL)  # 4 slots, items decoded side by side, the system prompt reused
    assert llamacpp_batch.peak == EVAL_SLOTS  # four items did share each batch
    with session() as s:  # the second run must decode, not read the first run's answers
        s.query(CachedResponse).delete()
    alone = answers(ONE)  # llama-cpp-python's Llama, one item after another
    assert all(text.strip() for text in together.values())
    differ = [k for k in together if together[k] != alone[k]]
    assert not differ, [(together[k], alone[k]) for k in differ]


def test_two_local_models_in_one_run_take_turns_on_the_engine_thread():
    """Two local models in one run, each on 4 slots, share llama.cpp's one thread: a batcher's
    step queues itself again behind whatever is waiting, so the two models' steps alternate
    and each one's items are stored throughout the run. Were one model served to the end
    first, the first half of the stored items would all be its own."""
    plan = make_plan(str(DATA), [SMOL, GEMMA], metrics=["f1"], limit=12, max_tokens=24, system=SYSTEM)
    result = asyncio.run(evals.evaluate(plan))
    with session() as s:
        rows = s.query(RunItem).filter_by(run_id=result.run_id).order_by(RunItem.id).all()
        order = [r.model_id for r in rows]
        errors = [r.output.get("error") for r in rows if r.output.get("error")]
    assert not errors
    assert Counter(order) == {SMOL: 12, GEMMA: 12}
    first_half = Counter(order[:12])
    assert min(first_half[SMOL], first_half[GEMMA]) >= 3, order
