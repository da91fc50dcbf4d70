"""The studio's catalog as a discovery tool, against a real studio server on the bundled catalog:
columns that sort both ways, one row per model with its other offers folded under the cheapest,
compare checkboxes, a catalog that follows another process's `catalog add` and `catalog sync`,
and the filters on a phone in a real browser (Chromium).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from modelatlas.catalog.catalog import load_catalog
from modelatlas.catalog.format import money
from tests.studio_browser import modelatlas, screenshot

FIXTURE = Path(__file__).parent / "data" / "modelsdev"
VOID = {"input", "br", "img", "meta", "link", "hr", "source", "wbr", "area", "col", "embed", "track"}
# The value each column sorts on, read straight from the records; None is unknown.
COLUMN_VALUES = {
    "name": lambda r: (r.name or r.id).lower(),
    "context": lambda r: r.context_length,
    "price_in": lambda r: r.price.input if r.price else None,
    "price_out": lambda r: r.price.output if r.price else None,
    "newest": lambda r: r.release_date,
}
FRESH = """\
- id: test/fresh-model
  backend: echo
  price: {input: 0.5, output: 1.5}
"""


class Page(HTMLParser):
    """The catalog page's results: each model row's id, its other offers, its summary line,
    every compare checkbox with the tags around it, the labels, and the forms."""

    def __init__(self, html: str):
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.heads: list[str] = []
        self.others: dict[str, list[str]] = {}
        self.summaries: dict[str, str] = {}
        self.checkboxes: list[tuple[dict, list[tuple[str, dict]]]] = []
        self.labels: set[str] = set()
        self.forms: list[dict] = []
        self.buttons: list[tuple[str, list[tuple[str, dict]]]] = []
        self._text_of: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "tr" and "data-model" in attrs and self._in_results():
            self.heads.append(attrs["data-model"])
            self.others[attrs["data-model"]] = []
        if tag == "li" and "data-model" in attrs and self.heads:
            self.others[self.heads[-1]].append(attrs["data-model"])
        if tag == "input" and attrs.get("type") == "checkbox" and attrs.get("name") == "m":
            self.checkboxes.append((attrs, list(self.stack)))
        if tag == "label":
            self.labels.add(attrs.get("for", ""))
        if tag == "form":
            self.forms.append(attrs)
        if tag in ("summary", "button"):
            self._text_of = tag
        if tag == "button":
            self.buttons.append(("", list(self.stack)))
        if tag not in VOID:
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        while self.stack:
            if self.stack.pop()[0] == tag:
                break
        if tag in ("summary", "button"):
            self._text_of = None

    def handle_data(self, data):
        if self._text_of == "summary" and self.heads:
            self.summaries[self.heads[-1]] = self.summaries.get(self.heads[-1], "") + data
        elif self._text_of == "button" and self.buttons:
            text, stack = self.buttons[-1]
            self.buttons[-1] = (text + data, stack)

    def _in_results(self) -> bool:
        return any(tag == "table" and attrs.get("id") == "results" for tag, attrs in self.stack)


def counts(html: str) -> tuple[int, int]:
    """(models, offers) as the page's count line says them."""
    found = re.search(r'id="result-count"[^>]*>(\d+) models, (\d+) offers', html)
    assert found, "the page does not say how many models and offers it found"
    return int(found[1]), int(found[2])


def get(studio: str, **params: str) -> str:
    answer = httpx.get(studio + "/catalog", params=params, timeout=60)
    assert answer.status_code == 200, answer.text[-2000:]
    return answer.text


def assert_in_order(values: list, descending: bool) -> None:
    """Known values in order, then the unknown ones (which sort last either way)."""
    known = [v for v in values if v is not None]
    assert values[: len(known)] == known, "an unknown value came before a known one"
    assert known == sorted(known, reverse=descending)


# --- over plain HTTP ------------------------------------------------------------------------


@pytest.mark.slow
def test_every_column_sorts_both_ways_on_the_real_catalog(studio):
    records = {r.id: r for r in load_catalog().records if r.hosting == "hosted"}
    for sort, value in COLUMN_VALUES.items():
        every = [value(r) for r in records.values() if value(r) is not None]
        for order in ("asc", "desc"):
            html = get(studio, hosting="hosted", group="0", sort=sort, order=order)
            ids = Page(html).heads
            assert len(ids) == 50 and set(ids) <= set(records), (sort, order)
            shown = [value(records[i]) for i in ids]
            assert_in_order(shown, descending=order == "desc")
            assert shown[0] == (max(every) if order == "desc" else min(every)), (sort, order)
            aria = "descending" if order == "desc" else "ascending"
            assert len(re.findall(r"aria-sort=", html)) == 1
            header = re.search(r'<th[^>]*aria-sort="(\w+)"><a class="sort" href="([^"]+)"', html)
            assert header and header[1] == aria, (sort, order)
            flipped = "asc" if order == "desc" else "desc"
            assert f"sort={sort}" in header[2] and f"order={flipped}" in header[2]  # a click turns it


@pytest.mark.slow
def test_the_usual_direction_relevance_reversed_and_the_cli_agree(studio, home):
    cheapest = Page(get(studio, hosting="hosted", group="0", sort="price_in")).heads
    assert cheapest == Page(get(studio, hosting="hosted", group="0", sort="price", order="asc")).heads
    newest = Page(get(studio, hosting="hosted", group="0", sort="newest")).heads
    assert newest == Page(get(studio, hosting="hosted", group="0", sort="newest", order="desc")).heads
    best = Page(get(studio, q="claude opus 4.6", group="0")).heads
    offers = counts(get(studio, q="claude opus 4.6", group="0"))[1]
    assert 1 < offers == len(best) <= 50  # every offer on one page, so the reversal is the whole list
    assert Page(get(studio, q="claude opus 4.6", group="0", order="asc")).heads == best[::-1]
    options = ["--hosted", "--sort", "price_out", "--order", "desc", "--limit", "50", "--json"]
    cli = modelatlas("catalog", "search", *options, home=home)
    studio_ids = Page(get(studio, hosting="hosted", group="0", sort="price_out", order="desc")).heads
    assert [r["id"] for r in json.loads(cli)] == studio_ids
    refused = httpx.get(studio + "/catalog", params={"sort": "cheapest"}, timeout=60)
    assert refused.status_code == 400 and "Valid values: relevance, name, context, price_in" in refused.text
    assert "Unknown order" in httpx.get(studio + "/catalog", params={"order": "up"}, timeout=60).text


@pytest.mark.slow
def test_resellers_of_one_model_are_one_row_cheapest_offer_first(studio):
    records = load_catalog().by_id
    page = Page(get(studio, q="gpt oss 120b"))
    head = next(h for h in page.heads if "groq/openai/gpt-oss-120b" in [h, *page.others[h]])
    offers = [head, *page.others[head]]
    # Named as the same model by models.dev (base_model), by a maker inside the id, or by name alone:
    assert {"groq/openai/gpt-oss-120b", "cerebras/gpt-oss-120b", "deepinfra/openai/gpt-oss-120b"} <= set(
        offers
    )
    assert not [i for i in offers if "20b" in i.replace("120b", "")]  # gpt-oss-20b is another model
    priced = [records[i].price.input for i in offers if records[i].price is not None]
    runnable = [records[i].runnable for i in offers]
    assert records[head].price is not None
    if not any(runnable):
        assert records[head].price.input == min(priced)
    else:
        assert records[head].runnable  # an offer that runs here comes first
    others = [records[i].price.input for i in offers[1:] if records[i].price is not None]
    assert page.summaries[head].startswith(f"+{len(offers) - 1} other ")
    assert page.summaries[head].endswith(f", from {money(min(others))}")


@pytest.mark.slow
def test_counts_say_models_and_offers_and_group_0_is_flat(studio):
    grouped_html = get(studio, q="claude opus 4.6")
    grouped = Page(grouped_html)
    models, offers = counts(grouped_html)
    assert len(grouped.heads) == models < offers  # one page holds them all
    assert sum(1 + len(grouped.others[h]) for h in grouped.heads) == offers
    assert any(grouped.others.values()) and '<details class="offers">' in grouped_html
    flat_html = get(studio, q="claude opus 4.6", group="0")
    flat = Page(flat_html)
    assert counts(flat_html) == (models, offers) and "one row per offer" in flat_html
    assert sorted(flat.heads) == sorted(h for head in grouped.heads for h in [head, *grouped.others[head]])
    assert not any(flat.others.values()) and '<details class="offers">' not in flat_html
    assert 'id="f-group" name="group" type="checkbox" value="0" checked' in flat_html
    assert '<details class="more-filters" open>' in flat_html  # group=0 is one of the "More filters"
    assert '<details class="more-filters">' in grouped_html
    refused = httpx.get(studio + "/catalog", params={"group": "no"}, timeout=60)
    assert refused.status_code == 400 and "group must be 0 or 1" in refused.text


@pytest.mark.slow
def test_every_offer_has_a_labelled_compare_checkbox_in_a_get_form_to_compare(studio):
    page = Page(get(studio, q="gpt oss 120b"))
    assert {
        "action": "/compare",
        "method": "get",
        "id": "compare",
        "aria-label": "Compare models",
    } in page.forms
    everyone = {m for h in page.heads for m in [h, *page.others[h]]}
    boxes = {attrs["value"]: (attrs, around) for attrs, around in page.checkboxes}
    assert set(boxes) == everyone
    for model, (attrs, around) in boxes.items():
        assert attrs["id"] in page.labels, model  # a label of its own
        tags = [tag for tag, _ in around]
        assert "a" not in tags and "button" not in tags and "summary" not in tags, model  # not nested
        assert any(tag == "form" and a.get("action") == "/compare" for tag, a in around), model
    for attrs, around in page.checkboxes:
        if attrs["value"] in page.heads:
            assert around[-1] == ("td", {"class": "pick"})  # a head's checkbox is its own cell
    compare = [stack for text, stack in page.buttons if text.strip() == "Compare selected"]
    assert compare and any(a.get("action") == "/compare" for t, a in compare[0] if t == "form")


@pytest.mark.slow
def test_a_model_added_or_synced_by_another_process_shows_without_a_restart(studio, home, tmp_path):
    with httpx.Client(base_url=studio, timeout=60) as client:
        assert client.get("/models/test/fresh-model").status_code == 404  # and the catalog is now cached
        assert 'data-model="test/fresh-model"' not in client.get("/catalog", params={"q": "fresh"}).text
        file = tmp_path / "fresh.yaml"
        file.write_text(FRESH)
        modelatlas("catalog", "add", str(file), home=home)
        card = client.get("/models/test/fresh-model")
        assert card.status_code == 200 and "test/fresh-model" in card.text
        assert 'data-model="test/fresh-model"' in client.get("/catalog", params={"q": "fresh"}).text
        modelatlas("models", "remove", "test/fresh-model", home=home)
        assert client.get("/models/test/fresh-model").status_code == 404
        # A sync writes a new snapshot: the studio shows it on its next page.
        before = counts(client.get("/catalog").text)
        modelatlas("catalog", "sync", "--source", str(FIXTURE), home=home)
        html = client.get("/catalog", params={"hosting": "hosted"}).text
        assert counts(html) != before and counts(html)[1] < 20
        page = Page(html)
        acme = next(h for h in page.heads if "closedco/mirror" in [h, *page.others[h]])
        assert acme == "hostco/acme-7b-base"  # three offers of acme/acme-7b; this one costs least
        assert sorted(page.others[acme]) == ["closedco/mirror", "hostco/acme/acme-7b-instruct"]
        assert page.summaries[acme] == f"+2 other offers, from {money(0.1)}"  # hostco lists it twice
        assert client.get("/models/hostco/acme-7b-base").status_code == 200


# --- in the browser -------------------------------------------------------------------------


@pytest.mark.slow
def test_on_a_phone_the_filters_take_under_half_the_screen_and_a_group_opens(page, studio):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/catalog?q=gpt+oss+120b")
    filters = page.locator("form.filters").bounding_box()
    assert filters and filters["height"] < 844 / 2, filters
    assert page.get_by_label("Task").is_visible() and not page.get_by_label("Provider").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing spills sideways
    nested = """[...document.querySelectorAll('input[name=m]')].filter(
        box => box.closest('a, button, summary') || box.labels.length !== 1).length"""
    assert page.evaluate(nested) == 0
    row = page.locator("#results > tbody > tr").filter(has=page.locator("details.offers")).first
    offer = row.locator("details.offers li").first
    assert not offer.is_visible()
    row.locator("details.offers summary").click()
    assert offer.is_visible() and row.locator("details.offers").get_attribute("open") is not None
    screenshot(page, "catalog-phone-group-open")
    head_id, offer_id = row.get_attribute("data-model"), offer.get_attribute("data-model")
    row.locator("td.pick input").check()
    offer.locator("input[name=m]").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(r"/compare\?m="))
    assert httpx.URL(page.url).params.get_list("m") == [head_id, offer_id]
    page.goto("/catalog?provider=openai")
    assert page.get_by_label("Provider").is_visible()  # More filters opens when one of them is set
