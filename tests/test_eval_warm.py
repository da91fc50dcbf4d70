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
heavy = sorted(m for m in HEAVY if m in sys.modules)
print(json.dumps({"answers": answers, "loads": llamacpp_engine.loads, "heavy": heavy}))
"""
# Libraries a warm run has no use for: model runtimes and what only some metrics or commands need.
# (llama_cpp it does use: prompts are counted against the context with a vocabulary-only load.)
HEAVY = [
    "torch",
    "transformers",
    "sentence_transformers",
    "faster_whisper",
    "lancedb",
    "pandas",
    "plotly",
    "openai",
    "PIL",
]


def run_once() -> tuple[dict, int, list[str]]:
    """The run's answers by model and item, the models it loaded and the heavy libraries it
    imported."""
    code = f"HEAVY = {HEAVY!r}\n{RUN}"
    done = subprocess.run(
        [sys.executable, "-c", code, str(DATA), *MODELS], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["answers"], out["loads"], out["heavy"]


def test_a_fully_cached_rerun_loads_no_model():
    cold, cold_loads, _ = run_once()
    warm, warm_loads, warm_heavy = run_once()
    assert len(cold) == 8 and all(text.strip() for text in cold.values())
    assert cold_loads == 2  # each model once
    assert warm_loads == 0
    assert warm_heavy == []  # start-up imports only what a cached run uses
    assert warm == cold
