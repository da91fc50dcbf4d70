"""What every studio page shares: the templates, the static folder and `render`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

NAV = [
    ("Catalog", "/catalog"),
    ("Benchmarks", "/benchmarks"),
    ("Playground", "/playground"),
    ("Arena", "/arena"),
    ("Runs", "/runs"),
    ("Improve", "/improve"),
    ("Decisions", "/decisions"),
    ("Deployments", "/deployments"),
]


def ci(mean: float | None, low: float | None = None, high: float | None = None, digits: int = 3) -> str:
    """``0.620 [0.480, 0.750]``; a missing number is "-"."""
    if mean is None:
        return "-"
    text = f"{mean:.{digits}f}"
    return text if low is None or high is None else f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


templates.env.filters.update(ci=ci, number=number, seconds=seconds, usd=usd)


def render(request: Request, name: str, status_code: int = 200, **context: Any):
    """The template ``name`` rendered with ``context`` (the nav and the request are always there)."""
    context.setdefault("nav", NAV)
    return templates.TemplateResponse(request, name, context, status_code=status_code)
