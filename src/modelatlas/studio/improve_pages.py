"""Improve: the head-to-head reports `modelatlas improve` saves under HOME/improve/<run_id>.json."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.exceptions import HTTPException

from modelatlas.studio import charts
from modelatlas.studio.web import render

router = APIRouter()


def reports_folder() -> Path:
    from modelatlas.config import settings

    return settings().home / "improve"


def list_reports() -> list[dict]:
    """The saved reports, newest first; a file that does not parse is left out."""
    found = []
    folder = reports_folder()
    files = folder.glob("*.json") if folder.is_dir() else []
    for path in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(report, dict) and "approaches" in report:
            found.append(report)
    return found


def load_report(run_id: str) -> dict:
    path = reports_folder() / f"{run_id}.json"
    if "/" in run_id or "\\" in run_id or run_id.startswith(".") or not path.is_file():
        raise HTTPException(404, f"No improve report for run {run_id!r}. See `modelatlas improve --help`.")
    return json.loads(path.read_text(encoding="utf-8"))


@router.get("/improve")
def improve_list(request: Request):
    return render(request, "improve_list.html", reports=list_reports())


@router.get("/improve/{run_id}")
def improve_page(request: Request, run_id: str):
    from modelatlas.strategies.improve_html import improve_section

    report = load_report(run_id)
    figures = charts.figures(approach_entries(report), report.get("metric") or "", per="approach")
    return render(
        request,
        "improve.html",
        report=report,
        section=Markup(improve_section(report)),
        figures=figures,
    )


def approach_entries(report: dict) -> list[dict]:
    """The approaches as chart entries (see studio/charts.py)."""
    metric = report.get("metric")
    entries = []
    for a in report.get("approaches", []):
        if a.get("missing") or not metric:
            continue
        stats = a["metrics"][metric]
        entries.append(
            {"label": a["approach"], "mean": stats.get("mean"), "ci_low": stats.get("ci_low")}
            | {"ci_high": stats.get("ci_high"), "cost_per_1k": a.get("cost_per_1k")}
            | {"latency_p50": a.get("latency_p50")}
        )
    return entries
