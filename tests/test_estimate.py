"""The dry-run estimate (`eval --dry-run`) counts prompts with the model's own tokenizer and
closes the model it opened for that (issue 12, item 5: the caller closes what it opens), with
the real SmolLM2 on llama.cpp."""

from __future__ import annotations

import asyncio
import json

import pytest

from modelatlas.backends.llamacpp import LlamaCppBackend
from modelatlas.evals.estimate import estimate
from modelatlas.evals.plan import make_plan
from modelatlas.loading import load_model

MODEL = "local/smollm2-135m-instruct"


@pytest.mark.slow
def test_dry_run_counts_with_the_models_tokenizer_and_closes_it(tmp_path, monkeypatch):
    rows = [{"id": "a", "input": "What is the capital of France?", "reference": "Paris"}]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    closed: list[str] = []
    real_close = LlamaCppBackend.aclose

    async def aclose(self):  # observed and called through, not replaced
        closed.append(self.model_id)
        await real_close(self)

    monkeypatch.setattr(LlamaCppBackend, "aclose", aclose)
    plan = make_plan(str(path), [MODEL], metrics=["exact_match"], max_tokens=8)
    found = asyncio.run(estimate(plan))
    assert closed == [MODEL]
    arm = found.arms[0]
    assert arm.calls == 1 and arm.output_tokens_max == 8 and arm.priced
    # The chat's text by the real tokenizer, plus 4 tokens of chat markup per message.
    model = load_model(MODEL)
    try:
        prompt = plan.strategies[0].preview(plan.dataset.items[0], "chat", plan.prompt_setup).prompt
        text = "\n".join(m.text for m in prompt)
        assert arm.input_tokens == model.count_tokens(text) + 4 * len(prompt)
        assert arm.output_tokens_expected == model.count_tokens("Paris")
    finally:
        asyncio.run(model.aclose())
