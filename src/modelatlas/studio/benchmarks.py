"""The benchmarks page: a leaderboard across runs and datasets, for one metric, with charts."""

from __future__ import annotations

from fastapi import APIRouter, Request

from modelatlas.evals.leaderboard import across_runs
from modelatlas.studio import charts
from modelatlas.studio.web import render

router = APIRouter()


@router.get("/benchmarks")
def benchmarks_page(request: Request, dataset: str = "", metric: str = ""):
    board = across_runs(dataset or None, metric or None)
    entries, metric = board.entries, board.metric
    return render(
        request,
        "benchmarks.html",
        board=board,
        best=board.best,
        leaders=board.leaders,
        entries=entries,
        datasets=board.datasets,
        metrics=board.metrics,
        dataset=board.dataset or "",
        metric=metric,
        figures=charts.figures(entries, metric),
    )
