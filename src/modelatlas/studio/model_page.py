"""A model's card: the sections of `modelatlas catalog show`, with copyable code and the store's results."""

from __future__ import annotations

from fastapi import APIRouter, Request
from markupsafe import Markup

from modelatlas.catalog import cards
from modelatlas.catalog.card_samples import samples
from modelatlas.catalog.catalog import load_catalog
from modelatlas.catalog.format import badges
from modelatlas.studio.web import render

router = APIRouter()


# Sections shown as structured blocks; every other section of the markdown card is shown as it is.
STRUCTURED = ("Facts", "How to use it", "Evaluation results", "Published benchmarks", "Sources")


@router.get("/models/{model_id:path}")
def model_page(request: Request, model_id: str):
    from modelatlas import store

    record = load_catalog().get(model_id)
    results = store.results_for_model(record.id)
    sections = card_sections(cards.card_markdown(record, results))
    usage_intro = sections.get("How to use it", "").split("```", 1)[0].split("\n\n")
    return render(
        request,
        "model.html",
        record=record,
        summary=markdown(cards.summary(record), inline=True),
        badges=badges(record).split(),
        facts=[(label, markdown(value, inline=True)) for label, value in cards.facts(record)],
        prose=[(title, markdown(body)) for title, body in sections.items() if title not in STRUCTURED],
        usage_intro=[markdown(p) for p in usage_intro if p.strip() and not p.rstrip().endswith(":")],
        samples=[(markdown(title, inline=True), language, code) for title, language, code in samples(record)],
        results=[_result(r) for r in results],
        benchmarks=record.benchmarks,
        sources=markdown(sections.get("Sources", "")),
    )


def card_sections(text: str) -> dict[str, str]:
    """The card's ``## `` sections by title (the title block before them is left out)."""
    sections = {}
    for part in text.split("\n## ")[1:]:
        title, _, body = part.partition("\n")
        sections[title.strip()] = body.strip()
    return sections


def markdown(text: str, inline: bool = False) -> Markup:
    """The card's markdown as HTML (raw HTML in it is escaped); ``inline``: one paragraph, unwrapped."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    html = parser.render(text or "").strip()
    if inline and html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        html = html[3:-4]  # one paragraph: inline, so it fits a table cell
    return Markup(html.replace("<a href=", '<a rel="noopener noreferrer" href='))


def _result(row: dict) -> dict:
    created = row.get("created_at")
    date = created.strftime("%Y-%m-%d %H:%M UTC") if created is not None else "unknown"
    return row | {"value_text": cards.value_with_ci(row), "date": date}
