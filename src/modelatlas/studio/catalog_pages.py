"""The catalog page: the same faceted search as `modelatlas catalog search`, with its state in the URL."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request

from modelatlas.catalog.catalog import load_catalog
from modelatlas.catalog.format import badges, money, parse_tokens, tokens
from modelatlas.catalog.records import ARCHITECTURES, TASKS
from modelatlas.catalog.search import SORTS, Filters, modalities, search
from modelatlas.errors import ConfigError
from modelatlas.studio.web import render

router = APIRouter()

PAGE_SIZE = 50
# The query-string names of the form's fields, in the order they appear in a shared URL.
FIELDS = (
    "q", "task", "modality", "arch", "license", "weights", "hosting", "provider",
    "max_price", "min_context", "fits", "runnable", "sort",
)  # fmt: skip


@router.get("/catalog")
def catalog_page(request: Request):
    params = {name: request.query_params.get(name, "").strip() for name in FIELDS}
    catalog = load_catalog()
    error, found = None, []
    try:
        filters = filters_from(params)
        found = search(catalog, filters, sort=params["sort"] or "relevance", limit=None)
    except ConfigError as exc:
        error = f"{exc.message} {exc.hint or ''}".strip()
    page = _page_number(request.query_params.get("page"))
    pages = max(1, -(-len(found) // PAGE_SIZE))
    page = min(page, pages)
    shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return render(
        request,
        "catalog.html",
        status_code=400 if error else 200,
        params=params,
        error=error,
        rows=[_row(r) for r in shown],
        total=len(found),
        catalog_size=len(catalog),
        catalog_date=catalog.date,
        page=page,
        pages=pages,
        first=(page - 1) * PAGE_SIZE + 1,
        page_url=lambda n: page_url(params, n),
        options=_options(catalog),
    )


def filters_from(params: dict[str, str]) -> Filters:
    """The search filters that the query string names; a bad number is a ConfigError."""
    weights, hosting = params["weights"], params["hosting"]
    if weights not in ("", "open", "proprietary"):
        raise ConfigError(f"Unknown weights {weights!r}.", hint="Valid values: open, proprietary.")
    return Filters(
        query=params["q"] or None,
        task=params["task"] or None,
        modality=params["modality"] or None,
        arch=params["arch"] or None,
        license=params["license"] or None,
        open_weights={"open": True, "proprietary": False}.get(weights),
        hosting=hosting or None,
        provider=params["provider"] or None,
        max_price=_number("max_price", params["max_price"], float),
        min_context=parse_tokens(params["min_context"], "min context") if params["min_context"] else None,
        fits=params["fits"] in ("1", "on", "true"),
        runnable=params["runnable"] in ("1", "on", "true"),
    )


def page_url(params: dict[str, str], page: int) -> str:
    """This view's URL at ``page``: only the fields that are set, so a shared link stays short."""
    query = {k: v for k, v in params.items() if v}
    if page > 1:
        query["page"] = str(page)
    return "/catalog" + (f"?{urlencode(query)}" if query else "")


def _number(name: str, text: str, kind: type):
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{name.replace('_', ' ')} must be a number, not {text!r}.") from None


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and int(text) > 0 else 1


def _row(record) -> dict:
    price = record.price
    return {
        "id": record.id,
        "name": record.name,
        "tasks": ", ".join(record.tasks) or "?",
        "context": tokens(record.context_length),
        "price_in": money(price.input if price else None, record),
        "price_out": money(price.output if price else None, record),
        "badges": badges(record).split(),
    }


def _options(catalog) -> dict:
    return {
        "task": TASKS,
        "modality": modalities(catalog),
        "arch": ARCHITECTURES,
        "provider": tuple(catalog.providers()),
        "sort": SORTS,
    }
