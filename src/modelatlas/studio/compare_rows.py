"""The rows of the model comparison (/compare): facts, prices, limits, capabilities, published
benchmarks and our own results, one cell per model, each row knowing whether its values differ.

Facts are worded as the model card words them (``cards.facts``), prices with the catalog's and
the studio's money functions, intervals with the studio's ``ci`` filter: the compare view says a
thing the way every other page says it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from modelatlas.catalog import cards
from modelatlas.catalog.catalog import Catalog
from modelatlas.catalog.format import money
from modelatlas.catalog.records import Benchmark, Capabilities, ModelRecord
from modelatlas.catalog.search import MAKERS
from modelatlas.studio.web import templates

UNKNOWN = cards.UNKNOWN
Facts = dict[str, str]  # a model card's facts table, by label
Score = dict[str, Any]  # one stored result (store.results_for_model)
ResultKey = tuple[str, str | None, str | None, str]  # dataset, its hash, strategy, metric
RESULT_ROWS = 20  # our own results: the newest dataset and metric pairs, at most this many rows
# The card's facts shown side by side, by the card's own labels (the compare row says the same).
CARD_FACTS = (
    "Tasks", "Architecture", "Parameters", "Quantization", "Open weights", "Licence", "Hosting",
    "Release date", "Knowledge cutoff", "Memory to run", "Fits this machine", "Runnable here now",
)  # fmt: skip
# Prices a record may carry beyond its token prices: (label, Price field, per 1M tokens or not).
OTHER_PRICES = (
    ("Cache read, per 1M tokens", "cache_read", True),
    ("Per image", "per_image", False),
    ("Per minute of audio", "audio_per_minute", False),
    ("Per hour of compute", "per_hour", False),
)


@dataclass(frozen=True)
class Cell:
    """One model's value: its text (what the difference test compares), a note under it, a link."""

    text: str
    note: str = ""
    href: str | None = None
    link: str = ""


@dataclass(frozen=True)
class Row:
    label: str
    cells: list[Cell]

    @property
    def differs(self) -> bool:
        """Whether the models' values differ (one model alone differs from nobody)."""
        return len({cell.text for cell in self.cells}) > 1


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    rows: list[Row] = field(default_factory=list)
    empty: str = ""  # what the section says when it has no row
    note: str = ""
    command: str = ""  # the command that fills an empty section


def sections(records: list[ModelRecord], catalog: Catalog) -> list[Section]:
    """Every section of the comparison of ``records`` (in the order of their columns)."""
    cards_facts = [dict(cards.facts(r)) for r in records]
    return [
        facts_section(records, cards_facts, catalog),
        prices_section(records),
        Section(
            "limits", "Context and output limits", _card_rows(cards_facts, ("Context length", "Max output"))
        ),
        capabilities_section(records, cards_facts),
        benchmarks_section(records),
        results_section(records),
    ]


def facts_section(records: list[ModelRecord], cards_facts: list[Facts], catalog: Catalog) -> Section:
    rows = [
        Row("Maker", [Cell(maker(r, catalog)) for r in records]),
        Row("Served by", [Cell(served_by(r, catalog)) for r in records]),
        Row("Kind", [Cell(facts["Mode"]) for facts in cards_facts]),
    ]
    return Section("facts", "Facts", rows + _card_rows(cards_facts, CARD_FACTS))


def prices_section(records: list[ModelRecord]) -> Section:
    """Token prices for every model; a price by the image, minute or hour where a record has one."""
    rows = [
        Row("Input, per 1M tokens", [Cell(_token_price(r, "input")) for r in records]),
        Row("Output, per 1M tokens", [Cell(_token_price(r, "output")) for r in records]),
    ]
    for label, name, per_token in OTHER_PRICES:
        values = [getattr(r.price, name) if r.price else None for r in records]
        if any(values):
            shown = [money(v, r) if per_token else _filter("usd")(v) for v, r in zip(values, records)]
            rows.append(Row(label, [Cell(text) for text in shown]))
    return Section("prices", "Prices (USD)", rows)


def capabilities_section(records: list[ModelRecord], cards_facts: list[Facts]) -> Section:
    rows = _card_rows(cards_facts, ("Modalities in", "Modalities out"))
    for name in Capabilities.model_fields:
        label = name.replace("_", " ").capitalize()
        rows.append(Row(label, [Cell(_yes_no(getattr(r.capabilities, name))) for r in records]))
    return Section("capabilities", "Capabilities", rows)


def benchmarks_section(records: list[ModelRecord]) -> Section:
    """One row per published benchmark any of the models has, each score with its source."""
    names = list(dict.fromkeys(b.name for r in records for b in r.benchmarks))
    rows = []
    for name in names:
        scores = [next((b for b in r.benchmarks if b.name == name), None) for r in records]
        rows.append(Row(name, [_benchmark_cell(b) for b in scores]))
    return Section(
        "benchmarks",
        "Published benchmarks",
        rows,
        empty="None of these models has a published score in the catalog.",
    )


def results_section(records: list[ModelRecord]) -> Section:
    """Our own results: per dataset (and its version), strategy and metric, each model's newest
    score in the store, as the mean with its 95% interval over n items, linked to its run."""
    from modelatlas import store

    latest = [_latest(store.results_for_model(r.id)) for r in records]
    dated = [(row["created_at"], key) for scores in latest for key, row in scores.items()]
    dated.sort(key=lambda pair: pair[0].timestamp() if pair[0] else 0.0, reverse=True)
    keys = list(dict.fromkeys(key for _, key in dated))[:RESULT_ROWS]
    rows = [Row(_result_label(key), [_result_cell(scores.get(key)) for scores in latest]) for key in keys]
    return Section(
        "results", "Our results", rows,
        empty="No run in the store has evaluated these models yet. Make one with",
        note="The newest run of each model on each dataset: the mean with its 95% interval, over n items.",
        command="modelatlas eval DATASET --model ID",
    )  # fmt: skip


def maker(record: ModelRecord, catalog: Catalog) -> str:
    """Who made the model: the provider when it is a maker; for a reseller, the maker its id names
    (openrouter/ai21/...) or the one maker listing a model of the same name; for a local model,
    the owner of its base model. "unknown" when none of these tells."""
    base = record.base_model or ""
    if record.hosting == "local":
        return base.split("/")[0] if "/" in base else UNKNOWN
    if record.provider in MAKERS:
        return record.provider or UNKNOWN
    parts = record.id.split("/")
    if len(parts) > 2:
        return parts[1]
    own = [p for p in sorted(MAKERS) if p != "local" and f"{p}/{parts[1]}" in catalog.by_id]
    return own[0] if len(own) == 1 else UNKNOWN


def served_by(record: ModelRecord, catalog: Catalog) -> str:
    """Where the model is called: this machine, its maker's API or a reseller's."""
    if record.hosting == "local":
        return "this machine"
    made_by = maker(record, catalog)
    if made_by == record.provider:
        return f"{record.provider} (the maker)"
    return f"{record.provider} (reseller)" if made_by != UNKNOWN else record.provider or UNKNOWN


def _card_rows(cards_facts: list[Facts], labels: tuple[str, ...]) -> list[Row]:
    return [Row(label, [Cell(facts[label]) for facts in cards_facts]) for label in labels]


def _token_price(record: ModelRecord, name: str) -> str:
    price = record.price
    if price and not (price.input or price.output) and (price.per_image or price.audio_per_minute):
        return "not billed by the token"
    return money(getattr(price, name) if price else None, record)


def _benchmark_cell(benchmark: Benchmark | None) -> Cell:
    if benchmark is None:
        return Cell("not published")
    note = " · ".join(x for x in (benchmark.metric, benchmark.date) if x)
    source = benchmark.source or ""
    if source.startswith(("http://", "https://")):
        return Cell(f"{benchmark.score:g}", note, href=source, link=urlsplit(source).netloc or "source")
    return Cell(f"{benchmark.score:g}", " · ".join(x for x in (note, source) if x))


def _latest(results: list[Score]) -> dict[ResultKey, Score]:
    """The newest score per (dataset, its hash, strategy, metric); ``results`` are newest first."""
    latest: dict[ResultKey, Score] = {}
    for row in results:
        latest.setdefault((row["dataset"], row.get("dataset_hash"), row.get("strategy"), row["metric"]), row)
    return latest


def _result_label(key: ResultKey) -> str:
    dataset, digest, strategy, metric = key
    label = f"{dataset} ({digest[:8]})" if digest else dataset
    return " · ".join(x for x in (label, strategy, metric) if x)


def _result_cell(row: Score | None) -> Cell:
    if row is None:
        return Cell("not evaluated")
    text = _filter("ci")(row["value"], row.get("ci_low"), row.get("ci_high"))
    return Cell(text, f"n = {row['n']}, run", href=f"/runs/{row['run_id']}", link=row["run_id"])


def _yes_no(value: bool | None) -> str:
    return UNKNOWN if value is None else ("yes" if value else "no")


def _filter(name: str) -> Callable[..., str]:
    """One of the studio's template filters (``usd``, ``ci``): the money and interval text every
    page writes."""
    found: Callable[..., str] = templates.env.filters[name]
    return found
