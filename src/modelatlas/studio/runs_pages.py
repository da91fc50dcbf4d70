"""Runs: the list, one run (leaderboard, charts, items with disagreements first, their pictures as
thumbnails), two runs compared."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
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


@router.get("/runs/{run_id}/image")
def item_image(run_id: str, item: str, n: int = 0) -> Response:
    """The ``n``-th picture an item's prompt sent (the run page's thumbnails): read from the stored
    prompt, a file by its path or bytes kept with the run; only an image is ever served."""
    from modelatlas.evals.image_rows import prompt_images, served_bytes

    _known(run_id)
    for output in records.item_outputs(run_id, item):
        images = prompt_images(output.prompt)
        if images:
            found = served_bytes(images[n]) if 0 <= n < len(images) else None
            if found is None:
                raise HTTPException(404, f"Item {item!r} has no readable image {n} (its file may be gone).")
            data, media_type = found
            return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})
    raise HTTPException(404, f"Run {run_id} sent no image for item {item!r}.")


@router.get("/runs/{run_id}/picture")
def made_picture(run_id: str, item: str, model: str, n: int = 0) -> Response:
    """The ``n``-th picture an image model made for an item (the run page's output thumbnails),
    read from the run's folder and served only while it is the file the run made (its sha256)."""
    from modelatlas.evals.image_plan import picture_of

    _known(run_id)
    try:
        data, media_type = picture_of(run_id, item, model, n)
    except ConfigError as exc:
        raise HTTPException(404, exc.message) from None
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})


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
