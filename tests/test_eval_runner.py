"""The evaluation runner: cache, checks before the run, reports, runs CLI, cards, resume after kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from modelatlas import evals
from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.cli.main import app
from modelatlas.errors import ConfigError
from modelatlas.evals import records
from modelatlas.evals.plan import make_plan

runner = CliRunner()
QA = [
    {"id": "q1", "input": "alpha beta", "reference": "alpha beta"},
    {"id": "q2", "input": "gamma", "reference": "gamma delta"},
    {"id": "q3", "input": "one two three", "reference": "four"},
    {"id": "q4", "input": "red", "reference": "red"},
]


@pytest.fixture
def qa(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in QA))
    return path


@pytest.fixture
def echo_models():
    """Two deterministic models: one repeats the question, one always says 'red'."""
    user.add(ModelRecord(id="test/echo", backend="echo", price=Price(input=1.0, output=2.0)))
    user.add(ModelRecord(id="test/red", backend="echo", options={"reply": "red"}))
    return ["test/echo", "test/red"]


def evaluate(plan):
    """The run id and the summary as `eval --json` prints it (``evaluate`` returns a RunResult)."""
    result = asyncio.run(evals.evaluate(plan))
    return result.run_id, result.summary.model_dump(mode="json")


def test_scores_summary_and_cost(qa, echo_models):
    run_id, summary = evaluate(make_plan(str(qa), echo_models, metrics=["exact_match", "f1"]))
    arms = {m["model"]: m for m in summary["models"]}
    assert arms["test/echo"]["metrics"]["exact_match"]["mean"] == pytest.approx(0.5)  # q1 and q4
    assert arms["test/red"]["metrics"]["exact_match"]["mean"] == pytest.approx(0.25)  # q4 only
    assert arms["test/echo"]["cost_usd"] > 0 and arms["test/red"]["cost_usd"] == 0
    assert summary["pairwise"] and summary["pairwise"][0]["test"] == "mcnemar"
    assert len(records.load_items(run_id)) == 8
    assert records.get_run(run_id).status == "done"


def test_cache_hits_then_misses_when_one_parameter_changes(qa, echo_models):
    first, _ = evaluate(make_plan(str(qa), ["test/echo"], metrics=["f1"]))
    assert not any(r.output.cached for r in records.load_items(first))
    again, _ = evaluate(make_plan(str(qa), ["test/echo"], metrics=["f1"]))
    assert all(r.output.cached for r in records.load_items(again))
    for changed in ({"max_tokens": 64}, {"system": "Be brief."}, {"temperature": 0.5}):
        run_id, _ = evaluate(make_plan(str(qa), ["test/echo"], metrics=["f1"], **changed))
        assert not any(r.output.cached for r in records.load_items(run_id)), changed
    user.add(ModelRecord(id="test/echo", backend="echo", options={"delay_s": 0.0, "dimensions": 4}))
    run_id, _ = evaluate(make_plan(str(qa), ["test/echo"], metrics=["f1"]))
    assert not any(r.output.cached for r in records.load_items(run_id)), "new model options, new identity"


def test_problems_are_caught_before_the_run(qa, tmp_path, echo_models):
    with pytest.raises(ConfigError, match="Did you mean 'exact_match'"):
        make_plan(str(qa), echo_models, metrics=["exact_mach"])
    bare = tmp_path / "bare.jsonl"
    bare.write_text('{"input": "hi"}\n')
    with pytest.raises(ConfigError, match=r"needs a reference, but .*bare\.jsonl:1"):
        make_plan(str(bare), echo_models, metrics=["f1"])
    with pytest.raises(ConfigError, match="needs a judge"):
        make_plan(str(qa), echo_models, metrics=["judge_score"])
    assert records.list_runs() == []


def test_cli_eval_json_report_and_dry_run(qa, echo_models, tmp_path):
    dry = runner.invoke(app, ["eval", str(qa), "-m", "test/echo", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    estimate = json.loads(dry.output)["arms"][0]
    assert estimate["calls"] == 4 and estimate["input_tokens"] > 0 and estimate["cost_usd_max"] > 0
    assert records.list_runs() == []
    report = tmp_path / "report.html"
    result = runner.invoke(
        app,
        [
            "eval",
            str(qa),
            "-m",
            "test/echo",
            "-m",
            "test/red",
            "--metric",
            "exact_match",
            "--json",
            "--report",
            str(report),
            "--samples",
            str(tmp_path / "s.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert set(summary) >= {"run_id", "dataset", "models", "pairwise"}
    assert summary["dataset"]["n"] == 4 and len(summary["dataset"]["hash"]) == 64
    for arm in summary["models"]:
        assert set(arm) >= {
            "model",
            "strategy",
            "n",
            "errors",
            "metrics",
            "latency",
            "tokens",
            "tokens_per_s",
            "cost_usd",
        }
        assert set(arm["metrics"]["exact_match"]) >= {"mean", "ci_low", "ci_high"}
    assert report.stat().st_size > 1_000_000 and "<script" in report.read_text()
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 8


def test_runs_cli_and_cards_show_results(qa, echo_models, tmp_path):
    run_a, _ = evaluate(make_plan(str(qa), echo_models, metrics=["exact_match"]))
    run_b, _ = evaluate(make_plan(str(qa), echo_models, metrics=["exact_match"], system="x"))
    listed = json.loads(runner.invoke(app, ["runs", "list", "--json"]).output)
    assert {r["id"] for r in listed} == {run_a, run_b}
    shown = json.loads(runner.invoke(app, ["runs", "show", run_a, "--json"]).output)
    assert shown["run_id"] == run_a
    compared = json.loads(runner.invoke(app, ["runs", "compare", run_a, run_b, "--json"]).output)
    assert compared["same_dataset"] and compared["rows"]
    for fmt, check in (
        ("json", json.loads),
        ("jsonl", lambda t: [json.loads(x) for x in t.splitlines()]),
        ("csv", lambda t: t.splitlines()),
    ):
        out = runner.invoke(app, ["runs", "export", run_a, "--format", fmt])
        assert out.exit_code == 0 and check(out.output)
    card = json.loads(runner.invoke(app, ["catalog", "show", "test/echo", "--format", "json"]).output)
    assert any(r["run_id"] == run_a and r["metric"] == "exact_match" for r in card["results"])
    missing = runner.invoke(app, ["runs", "show", run_a[:-1]])
    assert missing.exit_code == 2 and "Did you mean" in missing.output
    board = json.loads(runner.invoke(app, ["runs", "leaderboard", "--json"]).output)
    assert board["metric"] == "exact_match" and board["datasets"] == ["qa.jsonl"]
    means = [e["mean"] for e in board["entries"]]
    assert {e["run_id"] for e in board["entries"]} == {run_a, run_b} and means == sorted(means, reverse=True)
    table = runner.invoke(app, ["runs", "leaderboard", "--metric", "exact_match"])
    assert table.exit_code == 0 and "exact_match on qa.jsonl" in table.output
    unknown = runner.invoke(app, ["runs", "leaderboard", "--metric", "bleu"])
    assert unknown.exit_code == 2 and "exact_match" in unknown.output


def _count_items(db) -> int:
    try:
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT COUNT(*) FROM run_items").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def _eval_cmd(path, *extra):
    return [
        sys.executable,
        "-m",
        "modelatlas",
        "eval",
        str(path),
        "--model",
        "local/smollm2-135m-instruct",
        "--metric",
        "f1",
        "--max-tokens",
        "20",
        "--json",
        *extra,
    ]


def test_killed_run_resumes_without_redoing_or_losing_work(tmp_path):
    rows = [
        {"id": f"r{i}", "input": f"Name an animal that starts with the letter {c}.", "reference": c}
        for i, c in enumerate("ABCDEFGHIJ")
    ]
    data = tmp_path / "animals.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    home = tmp_path / "killed"
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    proc = subprocess.Popen(_eval_cmd(data), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while _count_items(home / "modelatlas.db") < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _count_items(home / "modelatlas.db")
    assert 3 <= done_before < 10, "the run should have been killed midway"
    con = sqlite3.connect(home / "modelatlas.db")
    run_id = con.execute("SELECT id FROM runs").fetchone()[0]
    con.close()
    resumed = subprocess.run(
        _eval_cmd(data, "--resume", run_id), env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    con = sqlite3.connect(home / "modelatlas.db")
    keys = con.execute("SELECT item_id FROM run_items WHERE run_id = ?", (run_id,)).fetchall()
    con.close()
    assert len(keys) == 10 and len(set(keys)) == 10
    fresh_env = {**os.environ, "MODELATLAS_HOME": str(tmp_path / "fresh")}
    whole = subprocess.run(_eval_cmd(data), env=fresh_env, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr[-2000:]
    f1_resumed = json.loads(resumed.stdout)["models"][0]["metrics"]["f1"]
    f1_whole = json.loads(whole.stdout)["models"][0]["metrics"]["f1"]
    assert f1_resumed["mean"] == pytest.approx(f1_whole["mean"])
    assert (f1_resumed["ci_low"], f1_resumed["ci_high"]) == pytest.approx(
        (f1_whole["ci_low"], f1_whole["ci_high"])
    )


def test_demo_end_to_end(tmp_path):
    """The main job on the first 3 questions: choose among the three bundled text models (eval
    and load test), improve the pick (few-shot, RAG over the docs), the two reports, next steps."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    report = tmp_path / "demo.html"
    env = {**os.environ, "MODELATLAS_HOME": str(tmp_path / "home"), "COLUMNS": "160"}
    done = subprocess.run(
        [sys.executable, "-m", "modelatlas", "demo", "--limit", "3", "--report", str(report)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for model in ("smollm2-135m-instruct", "gemma-3-270m", "qwen2.5-coder-0.5b-instruct"):
        assert model in done.stdout
    assert "Pick local/" in done.stdout and "Load test of" in done.stderr
    for approach in ("few-shot", "RAG", "Recommendation"):
        assert approach in done.stdout
    assert "Serve the pick:" in done.stdout and "modelatlas studio" in done.stdout
    assert report.exists() and report.stat().st_size > 1_000_000
    decision = tmp_path / "demo-decision.html"
    assert decision.exists() and "<svg" in decision.read_text()
    saved = list((tmp_path / "home" / "decisions").glob("*.json"))
    assert len(saved) == 1


def test_cli_maps_other_field_names(tmp_path, echo_models):
    path = tmp_path / "renamed.jsonl"
    path.write_text('{"question": "red", "gold": "red", "key": "k1"}\n')
    result = runner.invoke(
        app,
        [
            "eval",
            str(path),
            "-m",
            "test/red",
            "--metric",
            "exact_match",
            "--json",
            "--input-field",
            "question",
            "--reference-field",
            "gold",
            "--id-field",
            "key",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["models"][0]["metrics"]["exact_match"]["mean"] == 1.0
    bad = runner.invoke(app, ["eval", str(path), "-m", "test/red", "--metric", "exact_match"])
    assert bad.exit_code == 2 and "renamed.jsonl:1" in bad.output and "question" in bad.output


def test_runs_list_fits_an_80_column_terminal(qa, echo_models):
    """Each run on one line with its whole id at 80 columns (low-value columns dropped first);
    a wide terminal gets them back."""
    run_id, _ = evaluate(make_plan(str(qa), echo_models, metrics=["exact_match"], name="fits"))
    narrow = runner.invoke(app, ["runs", "list"], env={"COLUMNS": "80"}).output
    lines = narrow.splitlines()
    assert all(len(line) <= 80 for line in lines), narrow
    row = next(line for line in lines if run_id in line)  # the id whole, on one line
    assert "qa.jsonl" in row and "done" in row and "test/echo" in row
    wide = runner.invoke(app, ["runs", "list"], env={"COLUMNS": "200"}).output
    assert "exact_match" in wide and "fits" in wide and "metrics" in wide and "metrics" not in narrow
