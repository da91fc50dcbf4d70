"""A re-run whose every answer is in the response cache does no model work: no GGUF is
loaded (the context length comes from the file's header), and the answers are the first
run's. Real bundled SmolLM2 and Gemma, four items of the edtech example."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelatlas import evals
from modelatlas.backends import llamacpp_engine
from modelatlas.evals import records
from modelatlas.evals.plan import make_plan

DATA = Path(__file__).resolve().parents[1] / "examples" / "edtech-support" / "test.jsonl"
MODELS = ["local/smollm2-135m-instruct", "local/gemma-3-270m"]


def run_once() -> tuple[dict, int]:
    """The run's answers by (model, item) and the models loaded meanwhile."""
    before = llamacpp_engine.loads
    plan = make_plan(str(DATA), MODELS, metrics=["f1"], limit=4, max_tokens=16)
    result = asyncio.run(evals.evaluate(plan))
    answers = {(i.model, i.item_id): i.output.text for i in records.load_items(result.run_id)}
    return answers, llamacpp_engine.loads - before


def test_a_fully_cached_rerun_loads_no_model():
    cold, cold_loads = run_once()
    warm, warm_loads = run_once()
    assert len(cold) == 8 and all(text.strip() for text in cold.values())
    assert cold_loads == 2  # each model once
    assert warm_loads == 0
    assert warm == cold
