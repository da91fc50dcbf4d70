"""The result models (issue 12, item 3): each stored `--json` example reads into its model and
writes back the same JSON, values, key order, absent keys and all; older or newer files read."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from modelatlas.evals.results import (
    Estimate,
    Leaderboard,
    MetricSummary,
    RunComparison,
    RunSummary,
)
from modelatlas.strategies.finetune import FinetuneOutcome
from modelatlas.strategies.results import ApproachRow, ImproveReport

EXAMPLES = Path(__file__).resolve().parent / "data" / "json_shapes"
MODELS = {
    "eval": RunSummary,
    "runs_show": RunSummary,
    "eval_dry_run": Estimate,
    "runs_compare": RunComparison,
    "runs_leaderboard": Leaderboard,
    "improve": ImproveReport,
    "improve_finetune": ImproveReport,
    "finetune": FinetuneOutcome,
}


def stored(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_stored_example_reads_and_writes_back_the_same_json(name):
    data = stored(name)
    dumped = MODELS[name].model_validate(data).model_dump(mode="json")
    assert json.dumps(dumped) == json.dumps(data)  # the same text: keys in the same order


def test_a_summary_from_another_version_still_reads():
    data = stored("eval")
    data["added_later"] = {"x": 1}
    data["models"][0]["another"] = 2
    summary = RunSummary.model_validate(data)
    assert summary.models[0].metrics["exact_match"].n == 4
    assert "added_later" not in summary.model_dump(mode="json")


def test_numbers_are_plain_and_finite():
    stats = MetricSummary(mean=float("nan"), ci_low=np.float64(0.25), ci_high=float("inf"))
    assert stats.mean is None and stats.ci_high is None
    assert type(stats.ci_low) is float and stats.ci_low == 0.25
    json.dumps(stats.model_dump(mode="json"), allow_nan=False)
    assert not math.isnan(MetricSummary(mean=np.float32(0.5)).mean)


def test_an_approach_row_writes_only_the_keys_that_apply():
    names = {"approach": "RAG", "arm": "m@rag:kb", "model": "m", "strategy": "rag:kb"}
    assert ApproachRow(**names, missing=True).model_dump() == names | {"missing": True}
    plain = ApproachRow(**names, n=3).model_dump()
    assert "missing" not in plain and "invalid" not in plain and "training_seconds" not in plain
    tuned = ApproachRow(**names, n=3, training_seconds=None, training_cost=None)
    assert tuned.trained and list(tuned.model_dump())[-2:] == ["training_seconds", "training_cost"]
    invalid = ApproachRow(**names, invalid="sent no examples").model_dump()
    assert invalid["invalid"] == "sent no examples"


def test_an_unpaired_comparison_row_has_no_test_keys():
    data = stored("runs_compare")
    row = RunComparison.model_validate(data).rows[0]
    unpaired = row.model_copy(update={"verdict": None})
    assert not unpaired.paired
    assert list(unpaired.model_dump()) == ["arm", "metric", "a", "b", "diff"]
