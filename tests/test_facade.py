"""The Python facade (issue 12 item 8): ``import modelatlas as ma`` with get_model, evaluate,
aevaluate, catalog.search and list_models, on the bundled SmolLM2, the echo backend registered
through the same registry, the shipped catalog, and the CLI the facade must agree with."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import modelatlas as ma
from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.cli.main import app
from modelatlas.errors import ConfigError, UnknownModelError
from modelatlas.evals import records
from modelatlas.evals.results import RunResult
from modelatlas.types import Message
from tests.conftest import needs, run

SMOL = "local/smollm2-135m-instruct"
QA = [
    {"id": "q1", "input": "alpha beta", "reference": "alpha beta"},
    {"id": "q2", "input": "gamma", "reference": "gamma delta"},
    {"id": "q3", "input": "red", "reference": "red"},
]
cli = CliRunner()


@pytest.fixture
def qa(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in QA))
    return path


@pytest.fixture
def echo():
    """A deterministic model that repeats the question."""
    user.add(ModelRecord(id="test/echo", backend="echo"))
    return "test/echo"


def python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_import_modelatlas_imports_nothing_else():
    code = (
        "import json, sys, modelatlas\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('modelatlas', 'pydantic')))))"
    )
    assert json.loads(python(code)) == ["modelatlas"]


def test_names_load_on_first_use_and_submodules_still_import():
    code = (
        "import sys, modelatlas as ma\n"
        "ma.get_model\n"
        "from modelatlas import config, store\n"  # the hook says no, so the submodules import
        "print('modelatlas.loading' in sys.modules, store.__name__, config.__name__)"
    )
    assert python(code).split() == ["True", "modelatlas.store", "modelatlas.config"]
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        ma.no_such_name  # noqa: B018
    assert {"get_model", "evaluate", "aevaluate", "catalog", "list_models"} <= set(dir(ma))
    assert ma.catalog.search is ma.catalog.query.search


@needs("llama_cpp")
def test_get_model_runs_the_bundled_model():
    model = ma.get_model(SMOL)

    async def ask():
        async with model:
            return await model.generate([Message.user("Name a colour.")], max_tokens=8)

    answer = run(ask())
    assert model.id == SMOL
    assert answer.text.strip() and answer.usage.output_tokens > 0


def test_get_model_suggests_close_ids():
    with pytest.raises(UnknownModelError, match=f"Did you mean '{SMOL}'"):
        ma.get_model("local/smollm2-135m-instrct")


def test_evaluate_scores_like_the_cli_and_stores_the_run(qa, echo):
    shown = cli.invoke(app, ["eval", str(qa), "-m", echo, "--metric", "exact_match", "--json"])
    assert shown.exit_code == 0, shown.output
    from_cli = json.loads(shown.output)
    result = ma.evaluate(qa, [echo], metrics=["exact_match"], name="from-python")
    assert isinstance(result, RunResult)
    assert result.run.id == result.summary.run_id != from_cli["run_id"]
    assert records.get_run(result.run.id).status == "done"
    ours = result.summary.model_dump(mode="json")
    assert ours["dataset"] == from_cli["dataset"] and ours["name"] == "from-python"
    assert [(a["model"], a["n"], a["metrics"]) for a in ours["models"]] == [
        (a["model"], a["n"], a["metrics"]) for a in from_cli["models"]
    ]
    assert result.summary.models[0].metrics["exact_match"].mean == pytest.approx(2 / 3)  # q1, q3


def test_evaluate_refuses_inside_an_event_loop_and_aevaluate_runs_there(qa, echo):
    async def in_a_loop():
        with pytest.raises(ma.EventLoopRunningError, match="aevaluate") as refused:
            ma.evaluate(qa, echo, metrics=["exact_match"])
        assert isinstance(refused.value, RuntimeError)
        result = await ma.aevaluate(qa, echo, metrics=["exact_match"], strategies=["zero-shot"])
        await asyncio.sleep(0)  # the loop is still usable after the run
        return result

    result = run(in_a_loop())
    assert [a.model for a in result.summary.models] == [echo]


def test_evaluate_checks_the_plan_before_running(qa, echo):
    with pytest.raises(ConfigError, match="Did you mean 'exact_match'"):
        ma.evaluate(qa, [echo], metrics=["exact_mach"])


def test_catalog_search_is_the_cli_search():
    found = ma.catalog.search("gpt", hosting="hosted", sort="price", limit=5)
    shown = cli.invoke(
        app, ["catalog", "search", "gpt", "--hosted", "--sort", "price", "--limit", "5", "--json"]
    )
    assert shown.exit_code == 0, shown.output
    assert [r.id for r in found] == [r["id"] for r in json.loads(shown.output)]
    assert len(found) == 5 and all(r.hosting == "hosted" for r in found)
    with pytest.raises(ConfigError, match="Unknown provider"):
        ma.catalog.search(provider="no-such-provider")


def test_list_models_is_models_list(echo):
    listed = ma.list_models()
    assert echo in [r.id for r in listed]
    shown = json.loads(cli.invoke(app, ["models", "list", "--json"]).output)
    assert [r.id for r in listed] == [r["id"] for r in shown]


@needs("sentence_transformers")
def test_the_embedding_cards_python_sample_runs():
    from modelatlas.catalog.bundled import resolve_bundled
    from modelatlas.catalog.card_samples import samples

    [(_, language, code)] = [s for s in samples(resolve_bundled("local/all-minilm-l6-v2")) if "ma." in s[2]]
    assert language == "python" and "import modelatlas as ma" in code
    assert python(code).strip() == "384"  # all-MiniLM-L6-v2's vectors
