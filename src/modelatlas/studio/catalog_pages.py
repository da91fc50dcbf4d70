"""The catalog page: the same faceted search as `modelatlas catalog search`, with its whole state in
the URL (filters, sort and order, grouping, page), so a shared link shows the same view.

By default a model that several providers offer is one row, its cheapest offer first and the
others folded under it (catalog.offers); ``group=0`` shows one row per offer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from modelatlas.catalog.catalog import Catalog, load_catalog
from modelatlas.catalog.format import badges, money, parse_tokens, tokens
from modelatlas.catalog.offers import Group, group
from modelatlas.catalog.records import ARCHITECTURES, TASKS, ModelRecord
from modelatlas.catalog.search import NATURAL_ORDER, ORDERS, SORTS, Filters, modalities, search, sort_name
from modelatlas.errors import ConfigError
from modelatlas.studio.web import render

router = APIRouter()

PAGE_SIZE = 50
# The query-string names of the form's fields, in the order they appear in a shared URL.
FIELDS = (
    "q", "task", "modality", "arch", "license", "weights", "hosting", "provider",
    "max_price", "min_context", "fits", "runnable", "sort", "order", "group",
)  # fmt: skip
# The fields folded under "More filters" (open when one is set), so that the filters take less
# than half a phone's screen; search, task, where it runs, runnable and the sort stay in view.
MORE = ("modality", "arch", "license", "weights", "provider", "max_price", "min_context", "fits", "group")
ARIA = {"asc": "ascending", "desc": "descending"}


@router.get("/catalog")
def catalog_page(request: Request):
    params = {name: request.query_params.get(name, "").strip() for name in FIELDS}
    catalog = load_catalog()
    error, found, grouped = None, [], True
    try:
        filters = filters_from(params)
        grouped = _grouped(params["group"])
        found = search(
            catalog, filters, sort=params["sort"] or "relevance", limit=None, order=params["order"] or None
        )
    except ConfigError as exc:
        error = f"{exc.message} {exc.hint or ''}".strip()
    groups = group(found, catalog.model_keys)
    units = groups if grouped else [Group(head=r, others=()) for r in found]
    page = _page_number(request.query_params.get("page"))
    pages = max(1, -(-len(units) // PAGE_SIZE))
    page = min(page, pages)
    shown = units[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return render(
        request,
        "catalog.html",
        status_code=400 if error else 200,
        params=params,
        error=error,
        rows=[_group_row(g) for g in shown],
        grouped=grouped,
        models=len(groups),
        offers=len(found),
        catalog_models=len(set(catalog.model_keys.values())),
        catalog_size=len(catalog),
        catalog_date=catalog.date,
        page=page,
        pages=pages,
        first=(page - 1) * PAGE_SIZE + 1,
        page_url=lambda n: page_url(params, n),
        sort_url=lambda key: sort_url(params, key),
        sorted_by=sorted_by(params),
        current_sort=sort_name(params["sort"]),
        more_open=any(params[name] for name in MORE),
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
        max_price=_number("max_price", params["max_price"]),
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


def sorted_by(params: dict[str, str]) -> dict[str, str]:
    """The column the view is sorted on and its aria-sort value; empty for relevance (no column)."""
    key = sort_name(params["sort"] or "relevance")
    order = params["order"] or NATURAL_ORDER.get(key)
    if key == "relevance" or order not in ARIA:
        return {}  # relevance has no column; an unknown sort or order is already an error
    return {"key": key, "aria": ARIA[order]}


def sort_url(params: dict[str, str], key: str) -> str:
    """The link of column ``key``'s header: sorted on it in its usual direction, or the other way
    when the view is already sorted on it that way; back to the first page."""
    current = sorted_by(params)
    order = ""
    if current.get("key") == key:
        now = params["order"] or NATURAL_ORDER[key]
        order = "desc" if now == "asc" else "asc"
    return page_url(params | {"sort": key, "order": order}, 1)


def _grouped(text: str) -> bool:
    if text not in ("", "0", "1"):
        raise ConfigError(
            f"group must be 0 or 1, not {text!r}.",
            hint="group=0 shows one row per offer; leave it out to group a model's offers.",
        )
    return text != "0"


def _number(name: str, text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name.replace('_', ' ')} must be a number, not {text!r}.") from None


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and int(text) > 0 else 1


def _group_row(g: Group) -> dict[str, Any]:
    """The head offer's row, with the other offers and the line that unfolds them."""
    row = _row(g.head)
    others = [_row(r) for r in g.others]
    row["others"] = others
    if others:
        prices = [(r.price.input, r) for r in g.others if r.price is not None]
        cheapest = min(prices, key=lambda pair: pair[0], default=None)
        providers = {r.provider for r in g.others} - {g.head.provider}
        word = "provider" if len(providers) == len(others) else "offer"  # a provider may list it twice
        word += "" if len(others) == 1 else "s"
        since = f", from {money(*cheapest)}" if cheapest else ""
        row["summary"] = f"+{len(others)} other {word}{since}"
    return row


def _row(record: ModelRecord) -> dict[str, Any]:
    price = record.price
    return {
        "id": record.id,
        "name": record.name,
        "tasks": ", ".join(record.tasks) or "?",
        "context": tokens(record.context_length),
        "price_in": money(price.input if price else None, record),
        "price_out": money(price.output if price else None, record),
        "released": record.release_date or "?",
        "badges": badges(record).split(),
    }


def _options(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    return {
        "task": TASKS,
        "modality": modalities(catalog),
        "arch": ARCHITECTURES,
        "provider": tuple(catalog.providers()),
        "sort": SORTS,
        "order": ORDERS,
    }
