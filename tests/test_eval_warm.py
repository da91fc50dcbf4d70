"""A re-run whose every answer is in the response cache does no model work: no GGUF is
loaded (the context length comes from the file's header), and the answers are the first
run's. Each run is its own process (as a user's re-run is), so no model is loaded before it.
Real bundled SmolLM2 and Gemma, four items of the edtech example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "examples" / "edtech-support" / "test.jsonl"
MODELS = ["local/smollm2-135m-instruct", "local/gemma-3-270m"]
RUN = """
import asyncio, json, sys
from modelatlas import evals
from modelatlas.backends import llamacpp_engine
from modelatlas.evals import records
from modelatlas.evals.plan import make_plan
plan = make_plan(sys.argv[1], sys.argv[2:], metrics=["f1"], limit=4, max_tokens=16)
result = asyncio.run(evals.evaluate(plan))
answers = {f"{i.model}|{i.item_id}": i.output.text for i in records.load_items(result.run_id)}
print(json.dumps({"answers": answers, "loads": llamacpp_engine.loads}))
"""


def run_once() -> tuple[dict, int]:
    """The run's answers by model and item, and the models it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(DATA), *MODELS], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["answers"], out["loads"]


def test_a_fully_cached_rerun_loads_no_model():
    cold, cold_loads = run_once()
    warm, warm_loads = run_once()
    assert len(cold) == 8 and all(text.strip() for text in cold.values())
    assert cold_loads == 2  # each model once
    assert warm_loads == 0
    assert warm == cold
