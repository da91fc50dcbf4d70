"""Benchmarks never mislead: runs on different datasets and of different sizes are never ranked
together, each model and strategy shows once, and "best" appears only when the first row is
significantly ahead (else the rows tied with it say so). Deterministic echo models; the studio
page is fetched from a real studio server."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from modelatlas import evals
from modelatlas.catalog import user
from modelatlas.evals.leaderboard import across_runs
from modelatlas.evals.plan import make_plan
from modelatlas.records import ModelRecord

ECHO, RED = "test/echo", "test/red"


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def runs(tmp_path):
    """(1) sep.jsonl, 30 items, echo always right and red always wrong; (2) tie.jsonl, 20 items
    where each is right on half; (3) newest: a 3-item run of sep.jsonl (a toy subset)."""
    user.add(ModelRecord(id=ECHO, backend="echo"))
    user.add(ModelRecord(id=RED, backend="echo", options={"reply": "red"}))
    sep = _write(
        tmp_path / "sep.jsonl", [{"id": f"s{i}", "input": f"q{i}", "reference": f"q{i}"} for i in range(30)]
    )
    tie_rows = [
        {"id": f"t{i}", "input": f"q{i}", "reference": f"q{i}" if i % 2 else "red"} for i in range(20)
    ]
    tie = _write(tmp_path / "tie.jsonl", tie_rows)
    ids = []
    for path, limit in [(sep, None), (tie, None), (sep, 3)]:
        plan = make_plan(path, [ECHO, RED], metrics=["exact_match"], limit=limit)
        ids.append(asyncio.run(evals.evaluate(plan)).run_id)
    return ids


def test_the_default_board_is_one_dataset_its_full_version_and_a_real_best(runs):
    full = runs[0]
    board = across_runs(None, None)
    assert board.dataset == "sep.jsonl" and board.items == 30  # the last run's dataset, full size
    assert {e.run_id for e in board.entries} == {full}  # nothing from tie.jsonl, nor the toy run
    assert [e.model_id for e in board.entries] == [ECHO, RED] and all(e.n == 30 for e in board.entries)
    assert board.best == ECHO and board.leaders == []
    assert any("3 items" in note for note in board.notes)


def test_a_tie_is_shown_as_a_tie_not_a_best(runs):
    board = across_runs("tie.jsonl", None)
    assert {e.run_id for e in board.entries} == {runs[1]}
    assert [e.mean for e in board.entries] == [0.5, 0.5]
    assert board.best is None and set(board.leaders) == {ECHO, RED}


def test_a_rerun_shows_once_from_its_newest_run(runs, tmp_path):
    again = asyncio.run(
        evals.evaluate(make_plan(str(tmp_path / "sep.jsonl"), [ECHO, RED], metrics=["exact_match"]))
    )
    board = across_runs("sep.jsonl", None)
    assert {e.run_id for e in board.entries} == {again.run_id} and len(board.entries) == 2
    assert any("older results" in note for note in board.notes)


@pytest.mark.slow
def test_the_studio_page_shows_the_dataset_the_sample_size_and_no_false_best(runs, studio):
    _, tied, toy = runs
    with httpx.Client(base_url=studio, timeout=30) as client:
        page = client.get("/benchmarks").text
        assert "sep.jsonl (30 items)" in page and 'class="best"' in page
        assert tied not in page and toy not in page and "tie.jsonl (" not in page
        assert "all datasets" not in page  # there is no view that mixes datasets
        tie_page = client.get("/benchmarks", params={"dataset": "tie.jsonl"}).text
        assert 'class="best"' not in tie_page and "tied for first" in tie_page
        assert tie_page.count('<span class="tag">tied</span>') == 2
