"""Metrics as ItemMetric / PairMetric with their own typed options (issue 12, item 4).

One default per option, the same from Python and from the CLI; a bad option fails when the metric
is made, with "did you mean" and the options it takes; a run's flat options reach only the
metrics that take them, and one that no chosen metric takes is refused.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.cli.main import app
from modelatlas.errors import ConfigError
from modelatlas.evals.metrics import (
    Context,
    ItemMetric,
    Metric,
    MetricOptions,
    PairMetric,
    get_metric,
    is_pair_metric,
    make_metrics,
    metric_names,
    taken_options,
)
from modelatlas.evals.metrics.retrieval import MRR
from modelatlas.evals.plan import make_plan
from modelatlas.evals.types import Item, Output
from modelatlas.store.db import session
from modelatlas.store.schema import Run
from tests.conftest import run

runner = CliRunner()
QA = [
    {"id": "q1", "input": "alpha beta", "reference": "alpha beta"},
    {"id": "q2", "input": "gamma", "reference": "gamma delta"},
]
# The only relevant id comes sixth: MRR@5 is 0, the unbounded MRR 1/6.
SIXTH = Output(retrieved=["d1", "d2", "d3", "d4", "d5", "hit"])


@pytest.fixture
def qa(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in QA))
    user.add(ModelRecord(id="test/echo", backend="echo"))
    return str(path)


def mrr_of(metric: Metric) -> float:
    return run(metric.score(Item(id="q", input="?", reference=["hit"]), SIXTH, Context())).value


def test_every_metric_declares_its_options_aggregation_and_kind():
    for name in metric_names():
        metric = get_metric(name)
        assert issubclass(metric.Options, MetricOptions), name
        assert metric.Options.model_config["extra"] == "forbid", name
        assert isinstance(metric.options, metric.Options) and metric.aggregation, name
        assert is_pair_metric(metric) == (name == "judge_pairwise"), name
        assert isinstance(metric, PairMetric if name == "judge_pairwise" else ItemMetric), name
    aggregations = {n: get_metric(n).aggregation for n in ("exact_match", "bleu", "macro_f1", "wer")}
    assert aggregations == {
        "exact_match": "mean",
        "bleu": "corpus_bleu",
        "macro_f1": "macro_f1",
        "wer": "corpus_wer",
    }


def test_mrr_is_mrr_at_5_from_python_and_from_the_cli(qa):
    # Before typed options: 1/6 from Python (no k), 0.0 from the CLI (which always sent k=5).
    assert get_metric("mrr").options.k == MRR().options.k == 5
    assert mrr_of(get_metric("mrr")) == 0.0 == mrr_of(MRR())
    assert mrr_of(get_metric("mrr", k=None)) == pytest.approx(1 / 6)
    assert mrr_of(get_metric("mrr", k=6)) == pytest.approx(1 / 6)
    from_python = make_plan(qa, ["test/echo"], metrics=["mrr", "ndcg"])
    assert {n: m.options.k for n, m in from_python.metrics.items()} == {"mrr": 5, "ndcg": 5}
    # The CLI sends only what was given, so its plan is the same one.
    dry = runner.invoke(app, ["eval", qa, "-m", "test/echo", "--metric", "mrr", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output


def refusal(make) -> str:
    """The message and hint of the ConfigError that ``make()`` raises."""
    with pytest.raises(ConfigError) as info:
        make()
    return str(info.value)


def test_a_bad_option_fails_when_the_metric_is_made():
    no_kk = "The metric ndcg has no option 'kk'.\nDid you mean 'k'? Options of ndcg: k (default 5)."
    assert refusal(lambda: get_metric("ndcg", kk=3)) == no_kk
    no_k = "The metric exact_match has no option 'k'.\nThe metric exact_match takes no options."
    assert refusal(lambda: get_metric("exact_match", k=3)) == no_k
    too_small = "The metric recall_at_k's option k must be a whole number of at least 1, not 0."
    assert refusal(lambda: get_metric("recall_at_k", k=0)).startswith(too_small)
    judge = "The metric judge_pass's option judge_max_tokens: Input should be greater than or equal to 1"
    assert refusal(lambda: get_metric("judge_pass", judge_max_tokens=0)).startswith(judge)
    assert "option pattern is not a valid regular expression" in refusal(
        lambda: get_metric("regex", pattern="(")
    )
    typo = refusal(lambda: get_metric("judge_score").with_options(judge_max_token=10))
    assert "Did you mean 'judge_max_tokens'? Options of judge_score: judge_max_tokens (default 256)." in typo


def test_options_are_the_metrics_own_and_with_options_copies():
    base = get_metric("judge_score")
    longer = base.with_options(judge_max_tokens=64)
    assert (base.options.judge_max_tokens, longer.options.judge_max_tokens) == (256, 64)
    assert base.with_options({}) is base
    with pytest.raises(Exception, match="frozen"):
        longer.options.judge_max_tokens = 1  # type: ignore[misc]


def test_a_runs_options_reach_only_the_metrics_that_take_them():
    made = make_metrics(["exact_match", "mrr", "regex", "ndcg", "mrr"], {"k": 3, "pattern": "^a"})
    assert list(made) == ["exact_match", "mrr", "regex", "ndcg"]
    assert made["mrr"].options.k == made["ndcg"].options.k == 3 and made["regex"].options.pattern == "^a"
    assert taken_options(["exact_match", "f1"], {"k": 5}) == {}
    assert taken_options(["exact_match", "mrr"], {"k": 5, "pattern": "x"}) == {"k": 5}


def test_an_option_no_chosen_metric_takes_is_refused_naming_the_metrics_that_take_it():
    with pytest.raises(ConfigError) as info:
        make_metrics(["exact_match", "f1"], {"k": 3})
    assert info.value.message == "No chosen metric takes the option 'k' (chosen: exact_match, f1)."
    assert "'k' is an option of mrr, ndcg, pass_at_k, recall_at_k" in info.value.hint
    with pytest.raises(ConfigError) as info:
        make_metrics(["mrr"], {"kk": 3})
    assert "Did you mean 'k'?" in info.value.hint and "pattern (regex)" in info.value.hint


def test_the_cli_refuses_k_for_metrics_without_one_and_routes_pattern(qa):
    refused = runner.invoke(app, ["eval", qa, "-m", "test/echo", "--metric", "exact_match", "--k", "3"])
    assert refused.exit_code == 2 and "No chosen metric takes the option 'k'" in refused.output
    assert "is an option of mrr, ndcg, pass_at_k, recall_at_k" in refused.output
    args = ["eval", qa, "-m", "test/echo", "--metric", "regex", "--metric", "exact_match", "--pattern", "^al"]
    done = runner.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["models"][0]["metrics"]["regex"]["mean"] == 0.5  # the echo says "alpha beta", "gamma"


def test_resuming_a_run_stored_before_typed_options_keeps_working(qa):
    done = runner.invoke(app, ["eval", qa, "-m", "test/echo", "--metric", "exact_match", "--json"])
    run_id = json.loads(done.stdout)["run_id"]
    with session() as s:  # as the CLI stored it before: k=5 for every run, whatever the metrics
        row = s.get(Run, run_id)
        row.config = {**row.config, "params": {**row.config["params"], "metric_options": {"k": 5}}}
        row.status = "interrupted"
    resumed = runner.invoke(app, ["eval", qa, "--resume", run_id, "--json"])
    assert resumed.exit_code == 0, resumed.output
