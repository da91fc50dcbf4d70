"""Statistics (bootstrap, permutation, McNemar), the run summary and the report files."""

from __future__ import annotations

import csv
import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest
from rich.console import Console

from modelatlas.evals import stats
from modelatlas.evals.metrics.base import Metric
from modelatlas.evals.report_files import write_csv, write_json, write_jsonl
from modelatlas.evals.report_html import write_html
from modelatlas.evals.report_terminal import leaderboard, print_summary
from modelatlas.evals.summary import summarize
from modelatlas.evals.types import Item, ItemResult, Output, PairResult, RunInfo, Score
from modelatlas.types import Usage


class Correct(Metric):
    name = "correct"
    binary = True


class Length(Metric):
    """Lower is better, not binary: exercises the permutation path and the ranking sign."""

    name = "length"
    higher_is_better = False


# --- statistics -------------------------------------------------------------------------------


def test_bootstrap_ci_of_constant_values_is_a_point():
    values = np.ones(50)
    assert stats.bootstrap_ci(50, lambda idx: float(values[idx].mean())) == (1.0, 1.0)


def test_bootstrap_ci_of_a_fair_coin_and_seeding():
    values = np.array([0, 1] * 50, dtype=float)
    low, high = stats.bootstrap_ci(100, lambda idx: float(values[idx].mean()))
    assert 0.37 <= low <= 0.43 and 0.57 <= high <= 0.63
    assert stats.bootstrap_ci(100, lambda idx: float(values[idx].mean())) == (low, high)
    noisy = np.random.default_rng(0).normal(size=100)
    first = stats.bootstrap_ci(100, lambda idx: float(noisy[idx].mean()), seed=1)
    assert stats.bootstrap_ci(100, lambda idx: float(noisy[idx].mean()), seed=1) == first
    assert stats.bootstrap_ci(100, lambda idx: float(noisy[idx].mean()), seed=2) != first


def test_bootstrap_skips_none_and_handles_no_items():
    calls = []

    def stat(idx):
        calls.append(1)
        return None if len(calls) % 2 else 0.5

    assert stats.bootstrap_ci(10, stat, resamples=100) == (0.5, 0.5)
    assert stats.bootstrap_ci(0, stat) == (None, None)
    assert stats.bootstrap_ci(5, lambda idx: None) == (None, None)


def test_paired_bootstrap_difference():
    a = np.array([1.0] * 80 + [0.0] * 20)
    b = np.array([1.0] * 50 + [0.0] * 50)
    diff, low, high = stats.paired_bootstrap(100, lambda i: a[i].mean(), lambda i: b[i].mean())
    assert diff == pytest.approx(0.3)
    assert 0.15 < low < 0.3 < high < 0.45
    same = stats.paired_bootstrap(100, lambda i: a[i].mean(), lambda i: a[i].mean())
    assert same == (0.0, 0.0, 0.0)


def test_permutation_test():
    a = [0.1, 0.5, 0.9, 0.3, 0.7] * 4
    assert stats.permutation_test(a, a) == 1.0
    rng = np.random.default_rng(3)
    base = rng.normal(size=40)
    p = stats.permutation_test(base + 1.0, base, resamples=2000)
    assert p < 0.01
    assert p == pytest.approx(1 / 2001)
    assert stats.permutation_test([], []) == 1.0


def test_mcnemar_exact_binomial():
    # 8 items only A got right, 2 only B: p = 2 * P(X <= 2 | n=10, 0.5) = 0.109375
    a = [1] * 8 + [0] * 2 + [1] * 5 + [0] * 5
    b = [0] * 8 + [1] * 2 + [1] * 5 + [0] * 5
    assert stats.mcnemar(a, b) == pytest.approx(0.109375)
    assert stats.mcnemar([True, False], [True, False]) == 1.0
    assert stats.mcnemar([1] * 10, [0] * 10) == pytest.approx(2 * 0.5**10)


def test_percentiles():
    found = stats.percentiles(list(range(1, 101)))
    assert found[50] == pytest.approx(50.5)
    assert found[99] == pytest.approx(99.01)
    assert stats.percentiles([None, None]) == {50: None, 90: None, 95: None, 99: None}


# --- summary ----------------------------------------------------------------------------------


def _run(n: int) -> RunInfo:
    return RunInfo(
        id="r1",
        name="demo",
        dataset_path="qa.jsonl",
        dataset_hash="abc",
        dataset_n=n,
        models=["local/a", "local/b"],
        strategies=["zero-shot"],
        metrics=["correct", "length"],
    )


def _result(model, i, correct, *, error=None, cached=False, strategy="zero-shot", length=None):
    scores = {"correct": Score(value=float(correct)) if correct is not None else Score(error="judge failed")}
    scores["length"] = Score(value=float(length if length is not None else i % 7))
    output = Output(
        text=f"answer {i} from {model}",
        error=error,
        usage=Usage(input_tokens=10, output_tokens=5, cost_usd=0.001),
        latency_s=0.5 + i / 100,
        ttft_s=0.1,
        cached=cached,
    )
    return ItemResult(
        run_id="r1", model=model, strategy=strategy, item_id=f"q{i}", index=i, output=output, scores=scores
    )


def _two_arms(n=40):
    """Arm b is right on every item, arm a on half; a has one scoring error and one failed output."""
    results = [_result("local/b", i, 1, strategy="few-shot") for i in range(n)]
    for i in range(n):
        correct = None if i == 0 else i % 2
        results.append(_result("local/a", i, correct, error="timeout" if i == 1 else None, cached=i == 2))
    return results


METRICS = {"correct": Correct(), "length": Length()}

ARM_KEYS = {
    "model",
    "model_id",
    "strategy",
    "n",
    "errors",
    "metrics",
    "latency",
    "tokens",
    "tokens_per_s",
    "cost_usd",
    "cached",
    "context_tokens",
    "dropped",
    "examples_short",
    "items_short",
    "items_without_examples",
}
PAIR_KEYS = {"a", "b", "metric", "diff", "ci_low", "ci_high", "p_value", "test", "significant", "verdict"}


def test_summary_shape_means_and_mcnemar():
    summary = summarize(_run(40), _two_arms(), METRICS, resamples=500).model_dump(mode="json")
    json.dumps(summary, allow_nan=False)
    assert set(summary) == {"run_id", "name", "status", "dataset", "models", "pairwise", "judge_pairwise"}
    assert summary["dataset"] == {"path": "qa.jsonl", "hash": "abc", "n": 40}
    best, other = summary["models"]
    assert set(best) == ARM_KEYS and best["model"] == "local/b@few-shot"
    assert best["model_id"] == "local/b" and best["strategy"] == "few-shot"
    assert other["model"] == "local/a"
    assert set(best["metrics"]) == {"correct", "length"}
    assert set(best["metrics"]["correct"]) == {"mean", "ci_low", "ci_high", "errors", "n"}
    assert set(best["latency"]) == {"p50", "p90", "p95", "p99", "ttft_p50"}
    assert best["metrics"]["correct"] == {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0, "errors": 0, "n": 40}
    a = other["metrics"]["correct"]
    assert a["mean"] == pytest.approx(20 / 39) and a["errors"] == 1 and a["n"] == 39
    assert a["ci_low"] < a["mean"] < a["ci_high"]
    assert (other["n"], other["errors"], other["cached"]) == (40, 1, 1)
    assert other["tokens"] == {"input": 400, "output": 200}
    assert other["cost_usd"] == pytest.approx(0.04)
    live = [0.5 + i / 100 for i in range(40) if i not in (1, 2)]
    assert other["tokens_per_s"] == pytest.approx(5 * len(live) / sum(live))
    assert other["latency"]["ttft_p50"] == pytest.approx(0.1)
    pair = next(p for p in summary["pairwise"] if p["metric"] == "correct")
    assert set(pair) == PAIR_KEYS
    assert (pair["a"], pair["b"], pair["test"]) == ("local/b@few-shot", "local/a", "mcnemar")
    # 39 items both scored: b alone is right on 19 of them, a alone on none.
    assert pair["diff"] == pytest.approx(19 / 39)
    assert pair["p_value"] == pytest.approx(2 * 0.5**19)
    assert pair["significant"] and pair["verdict"] == "a better"


def test_summary_equal_arms_and_lower_is_better():
    results = [_result("local/a", i, i % 2, length=3) for i in range(30)]
    results += [_result("local/b", i, i % 2, length=5) for i in range(30)]
    summary = summarize(
        _run(30), results, {"length": Length(), "correct": Correct()}, resamples=300
    ).model_dump(mode="json")
    json.dumps(summary, allow_nan=False)
    assert [m["model"] for m in summary["models"]] == ["local/a", "local/b"]  # shorter is better
    by_metric = {p["metric"]: p for p in summary["pairwise"]}
    same = by_metric["correct"]
    assert (same["diff"], same["p_value"], same["significant"]) == (0.0, 1.0, False)
    assert same["verdict"] == "no significant difference"
    length = by_metric["length"]
    assert length["test"] == "permutation" and length["diff"] == pytest.approx(-2.0)
    assert length["verdict"] == "a better" and length["p_value"] < 0.01


def test_summary_with_no_scores_and_judge_pairs_has_no_nan():
    results = [_result("local/a", 0, None), _result("local/b", 0, None)]
    pairs = [
        PairResult(run_id="r1", metric="judge_pairwise", a="local/a", b="local/b", item_id="q0", score=s)
        for s in (Score(value=1.0), Score(value=0.5), Score(error="unparsable"))
    ]
    pairs.append(
        PairResult(
            run_id="r1",
            metric="judge_pairwise",
            a="local/b",
            b="local/a",
            item_id="q1",
            score=Score(value=1.0),
        )
    )
    summary = summarize(_run(1), results, {"correct": Correct()}, pairs).model_dump(mode="json")
    json.dumps(summary, allow_nan=False)
    assert summary["models"][0]["metrics"]["correct"]["mean"] is None
    assert summary["pairwise"][0]["diff"] is None and summary["pairwise"][0]["p_value"] is None
    (judge,) = summary["judge_pairwise"]
    assert set(judge) == {"a", "b", "metric", "a_win_rate", "ci_low", "ci_high", "n", "errors"}
    assert (judge["a"], judge["b"], judge["n"], judge["errors"]) == ("local/a", "local/b", 3, 1)
    assert judge["a_win_rate"] == pytest.approx(0.5)  # 1.0, 0.5 and the turned-around 0.0


def test_leaderboard_renders():
    summary = summarize(_run(40), _two_arms(), METRICS, resamples=200)
    console = Console(record=True, width=200)
    print_summary(summary, console)
    text = console.export_text()
    assert "b@few-shot" in text and "1.00" in text and "1.00–1.00" in text
    assert "a better" not in text and "b@few-shot better" in text
    assert leaderboard([summary, summary]) is not None
    narrow = Console(record=True, width=80)
    print_summary(summary, narrow)
    text = narrow.export_text()
    assert "a better" in text and "b@few-shot better" not in text  # b@few-shot is a in that pair
    assert " err " in text  # arm a has errors; with none, the column is left out


# --- files ------------------------------------------------------------------------------------


def test_jsonl_csv_and_json_files(tmp_path):
    results = _two_arms(6)
    summary = summarize(_run(6), results, METRICS, resamples=100)
    (tmp_path / "out").mkdir()  # report writers refuse a missing folder (issue 11, item 15)
    write_jsonl(results, tmp_path / "out" / "items.jsonl")
    lines = (tmp_path / "out" / "items.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 12
    first = next(r for r in records if r["model"] == "local/a" and r["index"] == 0)
    assert first["scores"] == {"correct": None, "length": 0.0}
    assert first["score_errors"] == {"correct": "judge failed"}
    assert first["usage"] == {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.001}
    assert {"run_id", "strategy", "item_id", "output", "error", "latency_s", "ttft_s", "cached"} <= set(first)

    write_csv(results, tmp_path / "items.csv")
    with open(tmp_path / "items.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and {"correct", "length", "latency_s", "output"} <= set(rows[0])
    row = next(r for r in rows if r["model"] == "local/a" and r["index"] == "1")
    assert (row["correct"], row["error"], row["output_tokens"]) == ("1.0", "timeout", "5")

    write_json(summary, tmp_path / "summary.json")
    assert json.loads((tmp_path / "summary.json").read_text()) == summary.model_dump(mode="json")
    assert not [p for p in tmp_path.rglob("*.tmp")]


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def test_html_report_is_standalone_escaped_and_disagreements_first(tmp_path):
    results = _two_arms(10)
    items = [Item(id=f"q{i}", input=f"question {i}", reference=[f"ref {i}"]) for i in range(10)]
    items[4] = Item(id="q4", input="<script>alert(1)</script> what?", reference=["x"])
    summary = summarize(_run(10), results, METRICS, resamples=100)
    path = write_html(summary, results, items, tmp_path / "report.html")
    html = path.read_text()
    assert path.stat().st_size > 2_000_000  # plotly.js is inside
    parser = _Links()
    parser.feed(html)
    assert any(len(s) > 1_000_000 and "plotly" in s.lower() for s in parser.scripts)
    assert not [link for link in parser.links if "http://" in link or "https://" in link]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; what?" in html
    # a is wrong on even items (and q0 is a scoring error), so those disagree with b and come first.
    order = [line.split('data-item="')[1].split('"')[0] for line in html.splitlines() if "data-item=" in line]
    assert order == ["q0", "q2", "q4", "q6", "q8", "q1", "q3", "q5", "q7", "q9"]
    for section in ('id="leaderboard"', 'id="pairwise"', 'id="items"', "chart-0", "Latency", "against cost"):
        assert section in html
    assert not any(math.isnan(x) for x in [summary.models[0].metrics["correct"].mean])
