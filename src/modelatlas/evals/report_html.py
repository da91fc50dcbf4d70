"""One standalone HTML report per run: it opens offline, with plotly.js inlined from the installed
``plotly`` package (no CDN). Tables are plain HTML, so the page reads without JavaScript too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from modelatlas.errors import MissingExtraError
from modelatlas.evals.report_files import atomic_write
from modelatlas.evals.report_terminal import fmt, fmt_ci, fmt_cost
from modelatlas.evals.results import MetricSummary, RunSummary
from modelatlas.evals.types import Item, ItemResult, Score, arm_label
from modelatlas.parts import data_url

AUDIO_INLINE_BYTES = 1_000_000  # an item's sound held as bytes is put in the page up to this size

TEXT_LIMIT = 400  # characters of an input or output shown per cell
CHART_CONFIG = {"displaylogo": False, "responsive": True}

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>modelatlas run {{ s.run_id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#f3f3f3} tr.best td{background:#e8f6e8;font-weight:600}
td.num{text-align:right;white-space:nowrap} .muted{color:#777} .err{color:#b00}
tr.disagree td:first-child{border-left:4px solid #e69500}
pre{white-space:pre-wrap;margin:0;font-family:inherit;max-width:40ch}
img.thumb{max-width:96px;max-height:96px;margin:.2rem .2rem 0 0;border:1px solid #ccc}
</style>
<script>{{ plotlyjs | safe }}</script>
</head><body>
<header><h1>Run {{ s.run_id }}{% if s.name %}: {{ s.name }}{% endif %}</h1>
<p>Dataset <code>{{ s.dataset.path }}</code> ({{ s.dataset.n }} items, hash <code>{{ s.dataset.hash }}</code>)
&middot; status {{ s.status }} &middot; report written {{ date }}</p></header>
{{ intro | safe }}
<h2>Leaderboard</h2>
<table id="leaderboard"><tr><th>arm</th><th>n</th><th>errors</th>
{% for name in metric_names %}<th>{{ name }} (95% CI)</th>{% endfor %}
<th>p50 latency</th><th>tokens/s</th><th>cost</th><th>cached</th></tr>
{% for m in board %}<tr{% if m.best %} class="best"{% endif %}><td>{{ m.model }}</td>
<td class="num">{{ m.n }}</td><td class="num">{{ m.errors }}</td>
{% for cell in m.cells %}<td class="num">{{ cell }}</td>{% endfor %}
<td class="num">{{ m.latency }}</td><td class="num">{{ m.speed }}</td>
<td class="num">{{ m.cost }}</td><td class="num">{{ m.cached }}</td></tr>{% endfor %}
</table>
{% for title, chart in charts %}<section><h2>{{ title }}</h2>{{ chart | safe }}</section>{% endfor %}
{% if s.pairwise %}<h2>Pairwise comparisons</h2>
<table id="pairwise"><tr><th>a</th><th>b</th><th>metric</th><th>diff a&minus;b</th><th>95% CI</th>
<th>p</th><th>test</th><th>verdict</th></tr>
{% for r in pairwise %}<tr><td>{{ r.a }}</td><td>{{ r.b }}</td><td>{{ r.metric }}</td>
<td class="num">{{ r.diff }}</td><td class="num">{{ r.ci }}</td><td class="num">{{ r.p }}</td>
<td>{{ r.test }}</td><td>{% if r.significant %}<strong>{{ r.verdict }}</strong>{% else %}
<span class="muted">{{ r.verdict }}</span>{% endif %}</td></tr>{% endfor %}</table>{% endif %}
{% if judge %}<h2>Judge pairwise</h2>
<table id="judge"><tr><th>a</th><th>b</th><th>metric</th><th>A win rate (95% CI)</th><th>n</th>
<th>errors</th></tr>{% for r in judge %}<tr><td>{{ r.a }}</td><td>{{ r.b }}</td><td>{{ r.metric }}</td>
<td class="num">{{ r.rate }}</td><td class="num">{{ r.n }}</td><td class="num">{{ r.errors }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Items</h2>
<p class="muted">Items where the arms disagree on {{ first_metric or "the first metric" }} come first
{% if hidden %}; {{ hidden }} more items are left out of this table{% endif %}.</p>
<table id="items"><tr><th>#</th><th>item</th><th>input</th><th>reference</th>
{% for arm in arms %}<th>{{ arm }}</th>{% endfor %}</tr>
{% for row in rows %}<tr class="{{ 'disagree' if row.disagree else 'agree' }}" data-item="{{ row.id }}">
<td class="num">{{ row.index }}</td><td>{{ row.id }}</td><td><pre>{{ row.input }}</pre>
{% if row.audio %}<audio controls preload="none" src="{{ row.audio }}"></audio>{% endif %}
{% for src in row.images %}{% if src %}<img class="thumb" src="{{ src }}"
alt="image {{ loop.index }} of item {{ row.id }}" loading="lazy">{% endif %}{% endfor %}</td>
<td><pre>{{ row.reference }}</pre></td>{% for cell in row.cells %}<td>
{% if cell is none %}<span class="muted">-</span>{% else %}<pre>{{ cell.text }}</pre>
{% if cell.error %}<div class="err">error: {{ cell.error }}</div>{% endif %}
<div class="muted">{{ cell.scores }}</div>{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table></body></html>
"""


def _plotly():
    try:
        import plotly.graph_objects as go
        import plotly.io as pio
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise MissingExtraError("plotly", "eval") from exc
    return go, pio, get_plotlyjs


def _truncate(text: str | None, limit: int = TEXT_LIMIT) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _metric_chart(go, summary: RunSummary, name: str):
    rows = [m for m in summary.models if m.metrics[name].mean is not None]
    means = [m.metrics[name].mean for m in rows]
    lows = [m.metrics[name].ci_low for m in rows]
    highs = [m.metrics[name].ci_high for m in rows]
    error = {
        "type": "data",
        "array": [(h - y) if h is not None else 0 for y, h in zip(means, highs)],
        "arrayminus": [(y - lo) if lo is not None else 0 for y, lo in zip(means, lows)],
    }
    fig = go.Figure(go.Bar(x=[m.model for m in rows], y=means, error_y=error))
    return fig.update_layout(yaxis_title=f"{name} (95% CI)", xaxis_title="arm")


def _cost_chart(go, summary: RunSummary, name: str):
    rows = [m for m in summary.models if m.metrics[name].mean is not None]
    x, y = [m.cost_usd for m in rows], [m.metrics[name].mean for m in rows]
    labels = [m.model for m in rows]
    point = go.Scatter(x=x, y=y, text=labels, mode="markers+text", textposition="top center")
    return go.Figure(point).update_layout(xaxis_title="cost (USD)", yaxis_title=name)


def _latency_chart(go, results: Sequence[ItemResult], arms: list[str]):
    fig = go.Figure()
    for arm in arms:
        values = [
            r.output.latency_s
            for r in results
            if arm_label(r.model, r.strategy) == arm
            and r.output.latency_s is not None
            and not r.output.cached
        ]
        fig.add_trace(go.Box(y=values, name=arm, boxpoints="outliers"))
    return fig.update_layout(yaxis_title="latency per item (s)", showlegend=False)


def _charts(summary: RunSummary, results: Sequence[ItemResult], names: list[str]) -> list[tuple]:
    go, pio, _ = _plotly()
    arms = summary.arm_labels
    figures = [(f"{name} by arm", _metric_chart(go, summary, name)) for name in names]
    if names:
        figures.append((f"{names[0]} against cost", _cost_chart(go, summary, names[0])))
    figures.append(("Latency", _latency_chart(go, results, arms)))
    html = []
    for i, (title, fig) in enumerate(figures):
        fig.update_layout(template="plotly_white", margin={"t": 30, "b": 40})
        div = pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            config=CHART_CONFIG,
            div_id=f"chart-{i}",
            default_height="380px",
        )
        html.append((title, div))
    return html


def _board(summary: RunSummary, names: list[str]) -> list[dict[str, Any]]:
    """The leaderboard's rows as the template shows them (text cells)."""
    board = []
    for rank, m in enumerate(summary.models):
        best = rank == 0 and bool(names) and m.metrics[names[0]].mean is not None
        latency = m.latency.p50
        board.append(
            {"model": m.model, "n": m.n, "errors": m.errors, "best": best, "cached": m.cached}
            | {"cells": [fmt_ci(m.metrics[name]) for name in names]}
            | {"latency": "-" if latency is None else f"{latency:.2f}s", "speed": fmt(m.tokens_per_s, 1)}
            | {"cost": fmt_cost(m.cost_usd)}
        )
    return board


def _tables(summary: RunSummary) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pairwise and judge rows as the template shows them (numbers as text)."""
    pairwise = [
        r.model_dump()
        | {
            "diff": fmt(r.diff, 3),
            "ci": "-" if r.ci_low is None else f"[{fmt(r.ci_low, 3)}, {fmt(r.ci_high, 3)}]",
            "p": "-" if r.p_value is None else f"{r.p_value:.3g}",
        }
        for r in summary.pairwise
    ]
    judge = [
        r.model_dump()
        | {"rate": fmt_ci(MetricSummary(mean=r.a_win_rate, ci_low=r.ci_low, ci_high=r.ci_high))}
        for r in summary.judge_pairwise
    ]
    return pairwise, judge


def _cell(result: ItemResult | None) -> dict | None:
    if result is None:
        return None
    scores = ", ".join(f"{name}: {_shown(s)}" for name, s in result.scores.items())
    return {
        "text": _truncate(result.output.text),
        "error": result.output.error,
        "scores": scores,
        "model": result.model,
        "pictures": list(range(len(result.output.images or []))),  # an image model's, by position
    }


def _shown(score: Score) -> str:
    """A score in a cell: its value, "error", or "-" for an item the metric does not apply to."""
    if score.ok:
        return fmt(score.value, 3)
    return "-" if score.error is None else "error"


def _first_value(result: ItemResult | None, name: str | None):
    score = result.scores.get(name) if result is not None and name else None
    return score.value if score is not None and score.ok else None


def item_rows(
    results: Sequence[ItemResult], items: Sequence[Item], arms: list[str], first: str | None
) -> list[dict]:
    """One row per item, items where the arms' first-metric values differ first, then by index."""
    by_id = {item.id: item for item in items}
    cells: dict[str, dict[str, ItemResult]] = {}
    index: dict[str, int] = {}
    for r in results:
        cells.setdefault(r.item_id, {})[arm_label(r.model, r.strategy)] = r
        index.setdefault(r.item_id, r.index)
    rows = []
    for item_id, found in cells.items():
        item = by_id.get(item_id)
        values = {_first_value(found.get(arm), first) for arm in arms}
        reference = " | ".join(item.reference) if item and item.reference else ""
        rows.append(
            {"id": item_id, "index": index[item_id], "disagree": len(values) > 1}
            | {"input": _truncate(item.prompt_text if item else ""), "reference": _truncate(reference)}
            | {"cells": [_cell(found.get(arm)) for arm in arms], "audio": _audio_src(item)}
            | _pictures(found.values())
        )
    return sorted(rows, key=lambda row: (not row["disagree"], row["index"]))


def _pictures(found) -> dict[str, list]:
    """The item's pictures as the stored prompts sent them (the first arm that sent any): where
    the report finds each (``images``: image_rows.report_src), and the positions of those still
    there (``thumbs``: the studio serves them by position)."""
    from modelatlas.evals.image_rows import prompt_images, report_src, still_there

    for result in found:
        if images := prompt_images(result.output.prompt):
            kept = [i for i, image in enumerate(images) if still_there(image)]
            return {"images": [report_src(image) for image in images], "thumbs": kept}
    return {"images": [], "thumbs": []}


def _audio_src(item: Item | None) -> str | None:
    """Where the report's player finds an item's sound: its file, as a file:// URL (the report
    plays it on the machine the dataset is on; nothing is copied), or small bytes inline."""
    audio = item.audio if item is not None else None
    if audio is None:
        return None
    if audio.path is not None:
        return audio.path.resolve().as_uri()
    data = audio.read()
    return data_url(f"audio/{audio.audio_format()}", data) if len(data) <= AUDIO_INLINE_BYTES else None


def write_html(
    summary: RunSummary,
    results: Sequence[ItemResult],
    items: Sequence[Item],
    path: str | Path,
    *,
    max_items: int = 1000,
    intro_html: str | None = None,
) -> Path:
    """Write the report to ``path`` (atomically) and return the path. ``intro_html`` (already
    escaped) goes first, under the header: the `improve` command puts its comparison there."""
    _, _, get_plotlyjs = _plotly()
    names = summary.metric_names
    arms = summary.arm_labels
    rows = item_rows(results, items, arms, names[0] if names else None)
    pairwise, judge = _tables(summary)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(TEMPLATE).render(
        s=summary,
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        plotlyjs=get_plotlyjs(),
        metric_names=names,
        board=_board(summary, names),
        charts=_charts(summary, results, names),
        pairwise=pairwise,
        judge=judge,
        first_metric=names[0] if names else None,
        arms=arms,
        rows=rows[:max_items],
        hidden=max(0, len(rows) - max_items),
        intro=intro_html or "",
    )
    return atomic_write(path, page)
