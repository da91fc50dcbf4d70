"""What every studio page shares: the templates, the static folder and `render`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from modelatlas.formats import interval, usd

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

NAV = [
    ("Catalog", "/catalog"),
    ("Compare", "/compare"),
    ("Benchmarks", "/benchmarks"),
    ("Playground", "/playground"),
    ("Arena", "/arena"),
    ("Runs", "/runs"),
    ("Improve", "/improve"),
    ("Decisions", "/decisions"),
    ("Deployments", "/deployments"),
]


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


templates.env.filters.update(ci=interval, number=number, seconds=seconds, usd=usd)


def render(request: Request, name: str, status_code: int = 200, **context: Any):
    """The template ``name`` rendered with ``context`` (the nav and the request are always there)."""
    context.setdefault("nav", NAV)
    return templates.TemplateResponse(request, name, context, status_code=status_code)
