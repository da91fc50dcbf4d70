"""Strategies as objects (issue 12, items 4 and 7): the runner holds them only through the
Strategy protocol and calls ``prepare`` for every item; a spec parses into one class; evals never
imports strategies."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.cli.main import app
from modelatlas.errors import ConfigError
from modelatlas.evals import records, runner
from modelatlas.evals.plan import make_plan
from modelatlas.evals.prompting import (
    FewShot,
    Prepared,
    PromptStrategy,
    Rag,
    Strategy,
    ZeroShot,
    examples_for,
    parse_strategy,
    render,
    stops_for,
)
from modelatlas.items import Item
from modelatlas.loading import load_model
from tests.conftest import run

ROWS = [{"id": f"q{i}", "input": f"What is item number {i}?", "reference": f"number {i}"} for i in range(5)]


@pytest.fixture
def qa(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


@pytest.fixture
def echo():
    user.add(ModelRecord(id="test/echo", backend="echo"))
    return "test/echo"


@dataclass(frozen=True)
class Shouting(PromptStrategy):
    """A strategy the runner has never heard of: it asks the question in capitals."""

    name: str = "shouting"
    seen: list[str] = field(default_factory=list)

    async def prepare(self, item, model, setup) -> Prepared:
        self.seen.append(item.id)
        return Prepared(item.prompt_text.upper(), stops_for(model.record.mode), prompt_tokens=7)


def execute(plan):
    info = runner.start_run(plan)
    run(runner.execute(plan, info))
    return {(r.strategy, r.item_id): r.output for r in records.load_items(info.id)}


def test_the_runner_sends_what_prepare_returns_for_every_item(qa, echo):
    plan = make_plan(str(qa), [echo], metrics=["exact_match"])
    shouting = Shouting()
    plan.strategies = [shouting]  # no flag of it is read anywhere: prepare is all the runner calls
    assert isinstance(shouting, Strategy)
    outputs = execute(plan)
    assert sorted(shouting.seen) == [r["id"] for r in ROWS]
    for row in ROWS:
        output = outputs[("shouting", row["id"])]
        # The echo model repeats the last user message: what prepare built is what was sent.
        assert output.prompt == output.text == row["input"].upper()
        assert output.prompt_tokens == 7


def test_built_in_strategies_store_the_prompt_they_prepare(qa, echo):
    arms = ["zero-shot", "few-shot:2"]
    plan = make_plan(str(qa), [echo], strategies=arms, metrics=["f1"], system="Be brief.")
    zero, few = plan.strategies
    assert isinstance(zero, ZeroShot) and isinstance(few, FewShot)
    outputs = execute(plan)
    model = load_model(echo)
    for item in plan.dataset.items:
        for strategy in (zero, few):
            prepared = run(strategy.prepare(item, model, plan.prompt_setup))
            stored = outputs[(strategy.name, item.id)]
            assert stored.prompt == prepared.prompt
            assert (stored.examples, stored.examples_short) == (prepared.examples, prepared.examples_short)
        assert outputs[("zero-shot", item.id)].examples is None
        assert outputs[("few-shot:2", item.id)].examples == 2


def test_prepared_prompts_are_the_ones_the_free_functions_build(qa, echo):
    """The same prompt and stop sequences as before strategies were objects, so every cache key
    (model identity, prompt, parameters) and every stored answer still matches."""
    plan = make_plan(str(qa), [echo], strategies=["few-shot:3"], metrics=["f1"])
    strategy, model, setup = plan.strategies[0], load_model(echo), plan.prompt_setup
    for item in plan.dataset.items:
        prepared = run(strategy.prepare(item, model, setup))
        old = render(item, examples_for(item, strategy, plan.pool), "chat", None, None)
        assert prepared.prompt == old and prepared.stop == stops_for("chat") == ()
        assert strategy.preview(item, "chat", setup).prompt == old  # the dry run counts the same
    assert stops_for("completion") == ("\nQuestion:", "\n\n")


def test_specs_parse_into_classes_with_todays_names():
    assert parse_strategy("zero-shot") == ZeroShot()
    assert parse_strategy("one-shot") == FewShot("one-shot", shots=1)
    assert parse_strategy("few-shot").name == "few-shot:3"
    assert parse_strategy("few-shot:2:random").name == "few-shot:2"
    assert parse_strategy("few-shot:2:similar") == FewShot(shots=2, select="similar")
    assert parse_strategy("rag:handbook") == Rag("handbook", k=4)
    assert parse_strategy("rag:handbook:3").name == "rag:handbook:3"
    assert Rag("kb", k=2).name == "rag:kb:2" and FewShot(shots=5).name == "few-shot:5"


@pytest.mark.parametrize(
    ("spec", "meant"),
    [("fewshot:3", "few-shot:3"), ("few-shots:2", "few-shot:2"), ("zero_shot", "zero-shot"), ("rag:", None)],
)
def test_a_misspelt_strategy_says_what_was_meant(spec, meant):
    with pytest.raises(ConfigError, match=f"Unknown strategy {spec!r}") as caught:
        parse_strategy(spec)
    hint = caught.value.hint
    assert "few-shot:K" in hint
    assert (f"Did you mean {meant!r}?" in hint) if meant else ("Did you mean" not in hint)


def test_the_cli_answers_a_misspelt_strategy_with_did_you_mean(qa, echo):
    result = CliRunner().invoke(app, ["eval", str(qa), "-m", echo, "--strategy", "fewshot:2", "--dry-run"])
    assert result.exit_code == 2
    assert "Did you mean 'few-shot:2'?" in result.output


def test_a_few_shot_strategy_refuses_an_empty_pool_before_the_run():
    items = [Item(id="a", input="Hi")]
    with pytest.raises(ConfigError, match="Few-shot needs examples"):
        FewShot(shots=2).check(items, [])
    ZeroShot().check(items, [])  # nothing to check


def test_evals_never_imports_strategies():
    """strategies (improve, fine-tuning, choose) orchestrate evaluations, so it sits above evals;
    evals holds the prompting strategies itself. Lazy imports count too."""
    evals = Path(__file__).resolve().parents[1] / "src" / "modelatlas" / "evals"
    found = []
    for path in evals.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found += [f"{path.name}:{node.lineno}" for n in names if n.startswith("modelatlas.strategies")]
    assert found == []


def test_multiple_choice_scores_the_strategys_transcript_by_log_likelihood(tmp_path, echo):
    """mc_accuracy asks the model for each choice's log-likelihood after the strategy's prompt in
    a base model's form (the preview: every example, nothing retrieved)."""
    hues = ["red", "blue"]
    rows = [
        {"id": f"m{i}", "input": f"Hue {i}?", "choices": hues, "answer": i % 2, "reference": hues[i % 2]}
        for i in range(3)
    ]
    data = tmp_path / "mc.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan = make_plan(str(data), [echo], strategies=["few-shot:1"], metrics=["mc_accuracy"])
    strategy = plan.strategies[0]
    outputs = execute(plan)
    for item in plan.dataset.items:
        output = outputs[("few-shot:1", item.id)]
        assert output.error is None and len(output.choice_logprobs) == 2
        assert output.prompt == strategy.preview(item, "completion", plan.prompt_setup).prompt
        assert output.prompt.endswith(f"Question: {item.input}\nAnswer:")
        assert (output.examples, output.examples_short) == (1, 0)


def test_similar_few_shot_ranks_the_pool_once_and_releases_the_embedder(tmp_path, echo, monkeypatch):
    """few-shot:1:similar embeds the pool with the real all-MiniLM-L6-v2 in ``start``, before any
    item; each item gets its nearest solved example; the embedder goes back to the pool after."""
    from modelatlas.backends.pool import shared_pool

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pool = [
        {"id": "p1", "input": "How do I reset my password?", "reference": "Use the reset link."},
        {"id": "p2", "input": "What does the Plus plan cost?", "reference": "$11.99 a month."},
        {"id": "p3", "input": "How long is the refund window?", "reference": "14 days."},
    ]
    tests = [
        {"id": "t1", "input": "I forgot my password, how do I get back in?", "reference": "reset link"},
        {"id": "t2", "input": "How many days do I have to ask for my money back?", "reference": "14"},
    ]
    for name, rows in (("pool.jsonl", pool), ("test.jsonl", tests)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan = make_plan(
        str(tmp_path / "test.jsonl"),
        [echo],
        strategies=["few-shot:1:similar"],
        metrics=["f1"],
        pool_path=str(tmp_path / "pool.jsonl"),
    )
    outputs = execute(plan)
    assert outputs[("few-shot:1:similar", "t1")].prompt[0].text == pool[0]["input"]
    assert outputs[("few-shot:1:similar", "t2")].prompt[0].text == pool[2]["input"]
    assert set(plan.prompt_setup.ranked) == {"t1", "t2"}
    # Released: no user holds it (a RAG test earlier in the session may keep it warm, unused).
    held = [m for m in shared_pool().models if m.id == "local/all-minilm-l6-v2"]
    assert all(shared_pool().users(m) == 0 for m in held)
