"""Runs: the list, one run (leaderboard, charts, items with disagreements first), two runs compared."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from modelatlas.errors import ConfigError, ModelAtlasError
from modelatlas.evals import records
from modelatlas.evals.leaderboard import arm_entries, summary_of
from modelatlas.studio import charts
from modelatlas.studio.web import render

router = APIRouter()

ITEMS_SHOWN = 200


@router.get("/runs")
def runs_page(request: Request):
    runs = records.list_runs(200)
    return render(request, "runs.html", runs=runs)


@router.get("/runs/compare")
def compare_page(request: Request, a: str = "", b: str = ""):
    from modelatlas.evals.compare import compare_runs

    result = None
    if a and b:
        _known(a), _known(b)
        result = compare_runs(a, b)
    return render(request, "compare.html", runs=records.list_runs(200), a=a, b=b, result=result)


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, metric: str = "", items: str = ""):
    from modelatlas.evals.report_html import item_rows

    run = _known(run_id)
    summary = summary_of(run)
    names = summary.metric_names
    metric = metric if metric in names else (names[0] if names else "")
    entries = arm_entries(summary, metric) if metric else []
    arms = summary.arm_labels
    rows = item_rows(records.load_items(run_id), _dataset_items(run), arms, names[0] if names else None)
    shown = rows if items == "all" else rows[:ITEMS_SHOWN]
    return render(
        request,
        "run.html",
        run=run,
        summary=summary,
        metric_names=names,
        metric=metric,
        entries=entries,
        figures=charts.figures(entries, metric, per="arm"),
        arms=arms,
        rows=shown,
        hidden=len(rows) - len(shown),
        disagreements=sum(1 for r in rows if r["disagree"]),
    )


def _known(run_id: str):
    try:
        return records.get_run(run_id)
    except ConfigError as exc:
        raise HTTPException(404, f"{exc.message} {exc.hint or ''}".strip()) from None


def _dataset_items(run) -> list:
    """The run's dataset items for the inputs and references, when the file is still the same."""
    from modelatlas.evals.datasets import load_dataset

    try:
        dataset = load_dataset(run.dataset_path)
    except (ModelAtlasError, OSError, ValueError):
        return []
    return dataset.items if dataset.hash == run.dataset_hash else []
