"""Models compared side by side: GET /compare?m=ID&m=ID... (up to six; the URL is the whole state,
so a comparison can be shared). A column per model: facts, prices, limits, capabilities,
published benchmarks and our own results (compare_rows.py), the rows whose values differ marked,
and links that remove a model, add one, show only the differences, or try them in the playground.

Two runs compared is another page (/runs/compare in runs_pages.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from modelatlas.catalog.catalog import Catalog, load_catalog
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import UnknownModelError
from modelatlas.studio import compare_rows
from modelatlas.studio.web import render, templates

MAX_MODELS = 6
ADD_MATCHES = 8  # models offered when what was typed to add names no model exactly
# The playground's mode for each kind of model it can try (an embedding model has none).
PLAYGROUND_KIND = {
    "chat": "text",
    "completion": "text",
    "image_generation": "image",
    "transcription": "audio",
}

router = APIRouter()


def compare_href(model_ids: Iterable[str | None], only_differences: bool = False) -> str:
    """The compare page of ``model_ids`` (blanks and repeats dropped, the first MAX_MODELS kept)."""
    ids = list(dict.fromkeys(m for m in model_ids if m))[:MAX_MODELS]
    query = [("m", m) for m in ids] + ([("diff", "1")] if only_differences else [])
    return "/compare" + (f"?{urlencode(query)}" if query else "")


# Other pages link here too (the decision page, a run page): the template global builds the link.
templates.env.globals["compare_href"] = compare_href


@dataclass
class Unknown:
    """An id no model has: the lookup's message, and the links that fix it."""

    model_id: str
    message: str
    suggestions: list[tuple[str, str]] = field(default_factory=list)  # (id, its compare link)
    drop_href: str = ""


@dataclass
class Adding:
    """What was typed in "Add a model" when it names no model exactly: the closest matches."""

    text: str
    matches: list[tuple[ModelRecord, str]] = field(default_factory=list)  # (record, its compare link)
    message: str = ""


@router.get("/compare")
def compare_page(request: Request, add: str = "", diff: str = "") -> Response:
    """The comparison the ``m`` values name (``diff=1``: only the rows that differ); ``add``, from
    the page's form, goes to the comparison with that model added, or lists the closest matches."""
    asked = list(dict.fromkeys(m.strip() for m in request.query_params.getlist("m") if m.strip()))
    only = diff in ("1", "on", "true")
    if len(asked) > MAX_MODELS:
        return _too_many(request, asked, only)
    catalog = load_catalog()
    records, unknown = look_up(catalog, asked, only)
    adding = None
    if add.strip():
        adding = adding_model(catalog, asked, add.strip(), only)
        if isinstance(adding, str):
            return RedirectResponse(adding, status_code=303)
    ids = [r.id for r in records]
    sections = compare_rows.sections(records, catalog) if records else []
    if only:
        sections = [replace(s, rows=[r for r in s.rows if r.differs]) for s in sections]
    playground, why_not = playground_link(records)
    return render(
        request, "compare_models.html", status_code=404 if unknown else 200,
        records=records, ids=ids, unknown=unknown, adding=adding, only=only, sections=sections,
        playground=playground, why_not=why_not, max_models=MAX_MODELS,
        remove_href=lambda i: compare_href([m for m in ids if m != i], only),
        toggle_href=compare_href(ids, not only),
    )  # fmt: skip


def look_up(catalog: Catalog, asked: list[str], only: bool) -> tuple[list[ModelRecord], list[Unknown]]:
    """The records of the ids asked for, in their order, and an Unknown for each id none has
    (its "did you mean" suggestions as links that put the suggestion in its place)."""
    records, unknown = [], []
    for model_id in asked:
        try:
            records.append(catalog.get(model_id))
        except UnknownModelError as exc:
            others = [m for m in asked if m != model_id]
            swaps = [
                (s, compare_href([s if m == model_id else m for m in asked], only)) for s in exc.suggestions
            ]
            # With suggestions the page links them ("did you mean"); without, the hint says what to do.
            message = exc.message if exc.suggestions else f"{exc.message} {exc.hint or ''}".strip()
            unknown.append(Unknown(model_id, message, swaps, compare_href(others, only)))
    return records, unknown


def adding_model(catalog: Catalog, asked: list[str], text: str, only: bool) -> str | Adding:
    """The page to go to when ``text`` names a model exactly (this comparison with it added);
    otherwise the catalog's closest matches to pick from, or why nothing can be added."""
    if len(asked) >= MAX_MODELS:
        return Adding(
            text, message=f"The comparison holds at most {MAX_MODELS} models: remove one to add {text!r}."
        )
    if text in catalog.by_id:
        return compare_href([*asked, text], only)
    from modelatlas.catalog.search import Filters, search

    found = [
        r for r in search(catalog, Filters(query=text), limit=ADD_MATCHES + len(asked)) if r.id not in asked
    ]
    matches = [(r, compare_href([*asked, r.id], only)) for r in found[:ADD_MATCHES]]
    message = (
        "" if matches else f"No model matches {text!r}. Try part of its name, such as its family or maker."
    )
    return Adding(text, matches, message)


def playground_link(records: list[ModelRecord]) -> tuple[str | None, list[str]]:
    """The playground with these models, when it can try them all at once (each runs here, they
    are of one kind, at most the playground's number); otherwise None and why not."""
    from modelatlas.studio.playground import MAX_MODELS as PLAYGROUND_MAX

    if not records:
        return None, []
    reasons = [why for why in map(cannot_run, records) if why]
    kinds = sorted({PLAYGROUND_KIND[r.mode] for r in records if r.mode in PLAYGROUND_KIND})
    if len(kinds) > 1:
        reasons.append(
            f"The playground tries one kind of model at a time; these are {' and '.join(kinds)} models."
        )
    if len(records) > PLAYGROUND_MAX:
        extra = len(records) - PLAYGROUND_MAX
        reasons.append(f"The playground takes at most {PLAYGROUND_MAX} models at once: remove {extra}.")
    if reasons:
        return None, reasons
    return "/playground?" + urlencode({"models": ",".join(r.id for r in records)}), []


def cannot_run(record: ModelRecord) -> str | None:
    """Why the playground cannot try ``record`` here now; None when it can."""
    if record.mode not in PLAYGROUND_KIND:
        return f"{record.id} is an {record.mode} model: it makes vectors, which the playground does not show."
    if record.runnable:
        return None
    if record.hosting == "local":
        if record.fits is False:
            return f"{record.id} is too big for this machine's memory."
        return f"{record.id} cannot run on this machine now."
    if record.backend is None:
        return f"{record.id}: modelatlas has no backend that calls {record.provider}'s API."
    from modelatlas.backends.declared import facts

    missing = facts(record).missing_env()
    if missing:
        return f"{record.id} needs {' and '.join(missing)} set: export it, then restart the studio."
    return f"{record.id} cannot be called from here now."


def _too_many(request: Request, asked: list[str], only: bool) -> Response:
    """Refused: more than MAX_MODELS ids; the page offers the first MAX_MODELS instead."""
    return render(
        request, "compare_models.html", status_code=400,
        error=f"A comparison holds at most {MAX_MODELS} models, and this link names {len(asked)}. "
        f"Remove {len(asked) - MAX_MODELS}, or compare the first {MAX_MODELS}.",
        first_href=compare_href(asked, only), records=[], ids=[], unknown=[], adding=None, only=only,
        sections=[], playground=None, why_not=[], max_models=MAX_MODELS,
        remove_href=lambda i: "", toggle_href="",
    )  # fmt: skip
