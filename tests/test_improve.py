"""`modelatlas improve`: every approach on one small test set, with intervals and a recommendation."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from modelatlas.cli.main import app
from modelatlas.strategies import improve

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "edtech-support"
runner = CliRunner()


def test_improve_runs_every_approach_and_recommends(tmp_path):
    report = tmp_path / "improve.html"
    args = [
        "improve",
        "--model",
        "local/smollm2-135m-instruct",
        "--dataset",
        str(EXAMPLE / "test.jsonl"),
        "--docs",
        str(EXAMPLE / "docs"),
        "--train",
        str(EXAMPLE / "train.jsonl"),
        "--limit",
        "3",
        "--max-steps",
        "2",
        "--metric",
        "f1",
        "--max-tokens",
        "24",
        "--price-per-hour",
        "0.5",
        "--report",
        str(report),
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = [a["approach"] for a in data["approaches"]]
    assert names == ["zero-shot", "few-shot", "RAG", "fine-tuned", "fine-tuned + RAG"]
    for row in data["approaches"]:
        stats = row["metrics"]["f1"]
        assert {"mean", "ci_low", "ci_high"} <= set(stats) and row["n"] == 3
        assert row["cost_per_1k"] > 0  # local compute priced by the hour
        assert row["latency_p50"] is not None and row["context_tokens"] > 0
        if row["approach"] != "zero-shot":
            assert {"diff", "ci_low", "ci_high", "p_value", "verdict"} <= set(row["vs_baseline"])
    rag = next(a for a in data["approaches"] if a["approach"] == "RAG")
    base = data["approaches"][0]
    assert rag["context_tokens"] > base["context_tokens"]  # retrieved chunks make prompts longer
    tuned = next(a for a in data["approaches"] if a["approach"] == "fine-tuned")
    assert tuned["model"].startswith("ft/smollm2-135m-instruct/") and tuned["training_seconds"] > 0
    assert tuned["training_cost"] > 0
    assert data["recommendation"] and data["knowledge_base"]
    page = report.read_text()
    assert "Improve: which approach is worth it?" in page and "Recommendation:" in page
    # The same base, data and settings reuse the fine-tune; the same docs reuse the index.
    again = improve.prepare(
        "local/smollm2-135m-instruct",
        docs=str(EXAMPLE / "docs"),
        train=str(EXAMPLE / "train.jsonl"),
        finetune_args={"epochs": 1, "lora_r": 8, "lr": 2e-4, "max_steps": 2},
    )
    assert again.finetune.reused and again.finetune.model_id == tuned["model"]
    assert "0 new, 0 changed, 1 unchanged" in " ".join(again.notes)


def test_improve_needs_a_local_base_to_fine_tune(monkeypatch):
    from modelatlas.catalog import user
    from modelatlas.catalog.records import ModelRecord

    user.add(ModelRecord(id="test/hosted", backend="echo", hosting="hosted"))
    result = runner.invoke(
        app,
        [
            "improve",
            "--model",
            "test/hosted",
            "--dataset",
            str(EXAMPLE / "test.jsonl"),
            "--train",
            str(EXAMPLE / "train.jsonl"),
        ],
    )
    assert result.exit_code == 2 and "local base model" in result.output


def test_improve_unknown_docs_folder_fails_clearly(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(
        app,
        [
            "improve",
            "--model",
            "local/smollm2-135m-instruct",
            "--dataset",
            str(EXAMPLE / "test.jsonl"),
            "--docs",
            str(empty),
        ],
    )
    assert result.exit_code == 2


def test_without_metric_improve_picks_one_from_the_data_and_says_why():
    """The example's references are free text, so token F1 decides (exact match would score
    every paraphrase 0); the choice and its reason are in the report's notes and on stderr."""
    args = ["improve", "--model", "local/smollm2-135m-instruct", "--dataset", str(EXAMPLE / "test.jsonl")]
    args += ["--train", str(EXAMPLE / "train.jsonl"), "--no-finetune", "--limit", "2", "--max-tokens", "8"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metric"] == "f1" and data["metrics"] == ["f1"]
    assert any("picked from the data" in note and "free text" in note for note in data["notes"])
    assert "Deciding metric: f1" in result.stderr
