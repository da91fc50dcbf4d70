"""Prompt strategies: parsing, few-shot selection (seeded and by similarity), templates, budget guard."""

from __future__ import annotations

import asyncio
import json

import pytest

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ConfigError
from modelatlas.evals import records
from modelatlas.evals.types import Item
from modelatlas.loading import load_model
from modelatlas.strategies.prompting import (
    examples_for,
    load_template,
    parse_strategy,
    rank_by_similarity,
    render,
)

POOL = [
    Item(id="p1", input="How do I reset my password?", reference=["Use the reset link."]),
    Item(id="p2", input="What does the Plus plan cost?", reference=["$11.99 a month."]),
    Item(id="p3", input="Can I download lessons offline?", reference=["Yes, in the app."]),
    Item(id="p4", input="How long is the refund window?", reference=["14 days."]),
]


def test_parse_strategies():
    assert parse_strategy("zero-shot").shots == 0
    assert parse_strategy("one-shot").shots == 1
    assert (parse_strategy("few-shot:2").shots, parse_strategy("few-shot:2").select) == (2, "random")
    assert parse_strategy("few-shot:2:similar").select == "similar"
    rag = parse_strategy("rag:handbook:3")
    assert (rag.kb, rag.k) == ("handbook", 3)
    with pytest.raises(ConfigError, match="Unknown strategy 'few-shots:2'"):
        parse_strategy("few-shots:2")


def test_random_examples_are_seeded_and_never_the_item_itself():
    item = POOL[0]
    chosen = examples_for(item, parse_strategy("few-shot:2"), POOL)
    assert len(chosen) == 2 and item not in chosen
    assert chosen == examples_for(item, parse_strategy("few-shot:2"), POOL)


def test_similar_examples_come_from_embeddings():
    embedder = load_model("local/all-minilm-l6-v2")
    question = Item(id="q", input="I forgot my password, how can I get back into my account?")
    ranked = asyncio.run(rank_by_similarity([question], POOL, embedder))
    chosen = examples_for(question, parse_strategy("few-shot:1:similar"), POOL, ranked)
    assert [c.id for c in chosen] == ["p1"]


def test_chat_and_completion_forms():
    item = Item(id="q", input="Is there a family plan?")
    chat = render(item, POOL[:2], "chat", system="Be brief.")
    assert [m.role for m in chat] == ["system", "user", "assistant", "user", "assistant", "user"]
    text = render(item, POOL[:1], "completion", system="Be brief.")
    assert text.startswith("Be brief.") and text.endswith("Question: Is there a family plan?\nAnswer:")


def test_templates_fill_fields_and_name_what_is_missing(tmp_path):
    path = tmp_path / "q.j2"
    path.write_text("[{{ category }}] {{ input }}")
    template = load_template(str(path))
    item = Item(id="q", input="Refunds?", metadata={"category": "billing"})
    assert render(item, [], "chat", template=template)[-1].content == "[billing] Refunds?"
    with pytest.raises(ConfigError, match="category"):
        render(Item(id="x", input="Hi"), [], "chat", template=template)
    bad = tmp_path / "bad.j2"
    bad.write_text("{{ input ")
    with pytest.raises(ConfigError, match=r"bad\.j2:1: template syntax error"):
        load_template(str(bad))


def test_budget_guard_drops_examples_that_overflow_the_context(tmp_path):
    from modelatlas import evals
    from modelatlas.evals.plan import make_plan

    # The echo model counts words as tokens: a 40-token window, 8 for the answer and 16 spare.
    user.add(ModelRecord(id="test/small", backend="echo", options={"context_length": 40}))
    rows = [
        {"id": f"q{i}", "input": f"question number {i} here", "reference": f"answer {i}"} for i in range(6)
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan = make_plan(str(data), ["test/small"], strategies=["few-shot:4"], metrics=["f1"], max_tokens=8)
    result = asyncio.run(evals.evaluate(plan))
    run_id, summary = result.run_id, result.summary
    results = records.load_items(run_id)
    assert all(r.output.error is None for r in results)
    assert all(r.output.dropped > 0 and r.output.prompt_tokens <= 40 - 8 - 16 for r in results)
    assert summary.models[0].dropped == sum(r.output.dropped for r in results)
