"""Improve: the head-to-head reports `modelatlas improve` saves under HOME/improve/<run_id>.json."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from markupsafe import Markup
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from modelatlas.evals.results import LeaderboardEntry
from modelatlas.strategies.results import ImproveReport
from modelatlas.studio import charts
from modelatlas.studio.web import render

router = APIRouter()


def reports_folder() -> Path:
    from modelatlas.config import settings

    return settings().home / "improve"


def read_report(path: Path) -> ImproveReport | None:
    """The report in ``path``; None when the file cannot be read or is no improve report."""
    try:
        return ImproveReport.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, ValidationError):
        return None


def list_reports() -> list[ImproveReport]:
    """The saved reports, newest first; a file that does not parse is left out."""
    folder = reports_folder()
    files = folder.glob("*.json") if folder.is_dir() else []
    found = [read_report(p) for p in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)]
    return [r for r in found if r is not None]


def load_report(run_id: str) -> ImproveReport:
    path = reports_folder() / f"{run_id}.json"
    report = None
    if not ("/" in run_id or "\\" in run_id or run_id.startswith(".")) and path.is_file():
        report = read_report(path)
    if report is None:
        raise HTTPException(404, f"No improve report for run {run_id!r}. See `modelatlas improve --help`.")
    return report


@router.get("/improve")
def improve_list(request: Request):
    return render(request, "improve_list.html", reports=list_reports())


@router.get("/improve/{run_id}")
def improve_page(request: Request, run_id: str):
    from modelatlas.strategies.improve_html import improve_section

    report = load_report(run_id)
    figures = charts.figures(approach_entries(report), report.metric or "", per="approach")
    return render(
        request,
        "improve.html",
        report=report,
        section=Markup(improve_section(report)),
        figures=figures,
    )


def approach_entries(report: ImproveReport) -> list[LeaderboardEntry]:
    """The approaches as chart entries (see studio/charts.py)."""
    metric = report.metric
    if not metric:
        return []
    return [
        LeaderboardEntry(
            run_id=report.run_id,
            dataset=Path(report.dataset.path).name,
            label=a.approach,
            model_id=a.model,
            strategy=a.strategy,
            mean=a.metrics[metric].mean,
            ci_low=a.metrics[metric].ci_low,
            ci_high=a.metrics[metric].ci_high,
            n=a.n,
            errors=a.errors,
            cost_per_1k=a.cost_per_1k,
            latency_p50=a.latency_p50,
        )
        for a in report.approaches
        if not a.missing
    ]
