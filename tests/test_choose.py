"""`modelatlas choose` end to end on the bundled models and a local dataset (shortlist, eval,
load test against a `modelatlas serve` it starts, Pareto front, recommendation, HTML report),
plus the front, the tie rule and the metric choice on real result objects."""

from __future__ import annotations

import json

import pytest

from modelatlas.catalog.format import parse_tokens
from modelatlas.errors import ConfigError
from modelatlas.evals.datasets import load_dataset
from modelatlas.evals.metric_choice import primary_metric
from modelatlas.evals.results import PairwiseTest
from modelatlas.strategies.choose import Constraints, Point, choose, mark_front, pick
from modelatlas.strategies.choose.saved import saved_decisions
from tests.conftest import run

SMOL, CODER = "local/smollm2-135m-instruct", "local/qwen2.5-coder-0.5b-instruct"


def _point(model: str, q: float, cost: float, p95: float, **kw) -> Point:
    return Point(
        model=model, quality=q, ci_low=q - 0.1, ci_high=q + 0.1, n=50, cost_per_1k=cost, p95_ms=p95, **kw
    )


def _test(a: str, b: str, significant: bool, p: float) -> PairwiseTest:
    verdict = "a better" if significant else "no significant difference"
    return PairwiseTest(a=a, b=b, metric="f1", diff=0.1, ci_low=0.05 if significant else -0.05, ci_high=0.2,
                        p_value=p, test="permutation", significant=significant, verdict=verdict)  # fmt: skip


def test_the_front_keeps_only_points_nothing_beats_on_every_axis():
    best = _point("a/best", 0.8, 1.0, 900)
    cheap = _point("a/cheap", 0.6, 0.0, 900)
    beaten = _point("a/beaten", 0.5, 1.0, 1200)  # worse than best on all three
    slow = _point("a/slow", 0.9, 1.0, 5000, eligible=False, why_not="over the cap")
    mark_front([best, cheap, beaten, slow])
    assert (best.on_front, cheap.on_front, beaten.on_front, slow.on_front) == (True, True, False, False)


def test_a_tie_goes_to_the_cheaper_and_a_clear_lead_to_the_better():
    best, cheap = _point("a/best", 0.8, 1.0, 900), _point("a/cheap", 0.7, 0.0, 900)
    chosen, tied = pick([best, cheap], "f1", [_test("a/best", "a/cheap", significant=False, p=0.3)])
    assert chosen is cheap and tied == [best]
    chosen, tied = pick([best, cheap], "f1", [_test("a/best", "a/cheap", significant=True, p=0.01)])
    assert chosen is best and tied == []
    # An interval without 0 but a permutation p of 0.17 (seen on 12 items) is not a separation.
    chosen, tied = pick([best, cheap], "f1", [_test("a/best", "a/cheap", significant=True, p=0.17)])
    assert chosen is cheap and tied == [best]


def test_the_metric_is_picked_from_the_data(tmp_path):
    labels = tmp_path / "labels.jsonl"
    rows = [
        {"id": f"r{i}", "input": f"Ticket {i}", "reference": ["billing", "bug", "other"][i % 3]}
        for i in range(30)
    ]
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert primary_metric(load_dataset(labels))[0] == "exact_match"
    name, why = primary_metric(load_dataset("examples/edtech-support/test.jsonl"))
    assert name == "f1" and "free text" in why


def test_context_sizes_as_people_write_them():
    assert parse_tokens("32k") == 32_000 and parse_tokens("1M") == 1_000_000 and parse_tokens("8192") == 8192
    with pytest.raises(ConfigError, match="32k"):
        parse_tokens("lots")


def test_a_budget_too_small_is_refused_before_anything_is_sent(monkeypatch, tmp_path):
    """A priced hosted candidate (a key is set, so it is testable): the dry-run estimate of the
    eval plus the load test's bound exceeds the budget, so choose stops before any call (the key
    is fake, and no request could leave 127.0.0.1 anyway)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key")
    constraints = Constraints(models=["openai/gpt-4.1"], budget_usd=0.0001)
    with pytest.raises(ConfigError, match="budget") as caught:
        run(choose("examples/edtech-support/test.jsonl", constraints, max_tokens=256))
    assert "--candidates" in caught.value.hint


def test_no_testable_candidate_says_why(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        run(choose("examples/edtech-support/test.jsonl", Constraints(models=["openai/gpt-4.1"])))


@pytest.mark.slow
def test_choose_end_to_end_on_the_bundled_models(tmp_path):
    from typer.testing import CliRunner

    from modelatlas.cli.main import app

    report = tmp_path / "decision.html"
    args = ["choose", "examples/edtech-support/test.jsonl", "--runnable", "--limit", "6", "--duration", "2s"]
    args += ["--max-tokens", "16", "--concurrency", "2", "--report", str(report), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert {c["model"] for c in decision["shortlist"]["candidates"]} >= {SMOL, CODER}
    assert decision["metric"] == "f1" and decision["run_id"]
    for point in decision["points"]:
        assert point["n"] == 6 and point["quality"] is not None and point["ci_low"] <= point["quality"]
        assert point["p95_ms"] > 0 and point["tokens_per_s"] > 0 and point["error_rate"] == 0
        assert point["cost_per_1k"] == 0  # local, no price per hour given
    assert decision["pick"] in {SMOL, CODER}
    assert decision["pick"] in decision["recommendation"]
    for model, level in decision["load"].items():
        assert level["concurrency"] == 2 and level["requests"] >= 2 and level["errors"] == 0, model
    assert any(p["on_front"] for p in decision["points"])
    html = report.read_text()
    assert "<svg" in html and decision["pick"] in html and "<script" not in html
    assert "http://" not in html and "https://" not in html  # opens offline, fetches nothing
    assert saved_decisions()[0].id == decision["id"]
