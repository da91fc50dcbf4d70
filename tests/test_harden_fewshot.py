"""Few-shot never silently becomes zero-shot (issue 11, item 17).

`improve --train T` with T in OpenAI chat JSONL used T as the few-shot pool, but chat rows had
no ``reference`` (the answer is the assistant turn), so "few-shot:3" sent no examples: its
prompts were zero-shot's. Now chat rows are read (the last assistant turn is the reference, the
turns before it the input), every item counts the examples it got, an arm that gets fewer warns
and one that would get none is refused. The per-item samples hold the exact prompt sent.

The deterministic echo backend (registered through the normal registry) stands in for a model:
what is checked is what is sent, and `--no-finetune` keeps the fine-tune arm out.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.cli.main import app

runner = CliRunner()
PAIRS = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Spain?", "Madrid"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the capital of Germany?", "Berlin"),
    ("What colour is the sky?", "Blue"),
]
TESTS = [("q1", "What is the capital of Portugal?", "Lisbon"), ("q2", "What is 3 plus 3?", "6")]


def chat_rows(pairs, answer=True) -> str:
    rows = []
    for question, reply in pairs:
        messages = [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": question},
        ]
        if answer:
            messages.append({"role": "assistant", "content": reply})
        rows.append(json.dumps({"messages": messages}))
    return "".join(r + "\n" for r in rows)


@pytest.fixture
def files(tmp_path):
    user.add(ModelRecord(id="test/echo", backend="echo"))
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps({"id": i, "input": q, "reference": a}) + "\n" for i, q, a in TESTS))
    train = tmp_path / "train.jsonl"
    train.write_text(chat_rows(PAIRS))
    return test, train


def samples(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_three_examples_sent(rows: list[dict]) -> None:
    questions, answers = {q for q, _ in PAIRS}, {a for _, a in PAIRS}
    few = [r for r in rows if r["strategy"] == "few-shot:3"]
    assert len(few) == len(TESTS)
    for row in few:
        prompt = row["prompt"]
        assert [m["role"] for m in prompt] == ["user", "assistant"] * 3 + ["user"], prompt
        assert {m["content"] for m in prompt[:-1:2]} <= questions
        assert {m["content"] for m in prompt[1:-1:2]} <= answers
        assert prompt[-1]["content"] in {q for _, q, _ in TESTS}
        assert (row["examples"], row["examples_short"], row["cached"]) == (3, 0, False)


def test_improve_with_chat_train_sends_three_examples(files, tmp_path):
    test, train = files
    out = tmp_path / "samples.jsonl"
    args = ["improve", "-m", "test/echo", "--dataset", str(test), "--train", str(train), "--no-finetune"]
    result = runner.invoke(app, [*args, "--few-shot", "3", "--metric", "f1", "--samples", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    zero, few = report["approaches"]
    assert (zero["approach"], few["approach"]) == ("zero-shot", "few-shot")
    assert few["context_tokens"] > zero["context_tokens"]  # was equal: the same prompts
    assert few["examples_short"] == 0 and not few.get("invalid")
    rows = samples(out)
    assert_three_examples_sent(rows)
    for row in (r for r in rows if r["strategy"] == "zero-shot"):
        assert [m["role"] for m in row["prompt"]] == ["user"] and row["examples"] is None


def test_eval_with_chat_pool_and_runs_export_show_the_messages(files, tmp_path):
    test, train = files
    args = ["eval", str(test), "-m", "test/echo", "--strategy", "few-shot:3", "--examples", str(train)]
    result = runner.invoke(app, [*args, "--metric", "exact_match", "--json"])
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    export = tmp_path / "export.jsonl"
    done = runner.invoke(app, ["runs", "export", run_id, "--format", "jsonl", "-o", str(export)])
    assert done.exit_code == 0, done.output
    assert_three_examples_sent(samples(export))


def test_a_pool_too_small_warns_and_counts_per_item_and_arm(files, tmp_path):
    test, _ = files
    small = tmp_path / "small.jsonl"
    small.write_text(chat_rows(PAIRS[:2]))
    out = tmp_path / "samples.jsonl"
    args = ["eval", str(test), "-m", "test/echo", "--strategy", "few-shot:3", "--examples", str(small)]
    done = subprocess.run(
        [sys.executable, "-m", "modelatlas", *args, "--metric", "f1", "--samples", str(out), "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "few-shot:3: 2 of 2 items get fewer than 3 examples" in done.stderr  # before the run
    assert "2 of 2 items got fewer examples than asked (2 missing in all)" in done.stderr  # after
    arm = json.loads(done.stdout)["models"][0]
    assert (arm["examples_short"], arm["items_short"], arm["items_without_examples"]) == (2, 2, 0)
    assert {(r["examples"], r["examples_short"]) for r in samples(out)} == {(2, 1)}


def test_examples_the_context_guard_drops_are_counted(files, tmp_path, caplog):
    """A context window too small for any example: every item falls back to zero examples, so
    the improve report flags the few-shot arm and leaves it out of the recommendation."""
    test, train = files
    # 35 echo tokens: the question and the answer fit, the question and one example do not.
    user.add(ModelRecord(id="test/tiny", backend="echo", options={"context_length": 35}))
    args = ["improve", "-m", "test/tiny", "--dataset", str(test), "--train", str(train), "--no-finetune"]
    with caplog.at_level(logging.WARNING):
        result = runner.invoke(app, [*args, "--max-tokens", "4", "--metric", "f1", "--json"])
    assert result.exit_code == 0, result.output
    few = json.loads(result.stdout)["approaches"][1]
    assert few["examples_short"] == 3 * len(TESTS) and few["items_short"] == len(TESTS)
    assert few["invalid"] == "few-shot:3 sent no examples at all (it ran as zero-shot)"
    assert "test/tiny@few-shot:3 sent no examples at all" in caplog.text


def test_a_pool_without_answers_is_refused_before_anything_runs(files, tmp_path):
    test, _ = files
    unanswered = tmp_path / "unanswered.jsonl"
    unanswered.write_text(chat_rows(PAIRS, answer=False))
    args = ["eval", str(test), "-m", "test/echo", "--strategy", "few-shot:3", "--examples", str(unanswered)]
    result = runner.invoke(app, [*args, "--metric", "f1"])
    assert result.exit_code == 2, result.output
    assert "few-shot:3 would send no examples: 0 of the 5 pool rows have an answer" in result.output
    assert "Traceback" not in result.output
    # improve refuses it before fine-tuning (which would otherwise take minutes first)
    result = runner.invoke(
        app, ["improve", "-m", "test/echo", "--dataset", str(test), "--train", str(unanswered)]
    )
    assert result.exit_code == 2 and "would send no examples" in result.output
