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
    if len({e.run_id for e in entries}) > 1:
        entries = [e.model_copy(update={"label": f"{e.label} ({e.run_id})"}) for e in entries]
    return render(
        request,
        "benchmarks.html",
        entries=entries,
        datasets=board.datasets,
        metrics=board.metrics,
        dataset=dataset,
        metric=metric,
        figures=charts.figures(entries, metric),
    )
