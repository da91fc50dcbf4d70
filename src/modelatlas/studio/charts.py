"""Plotly figures as plain data (``{"data": [...], "layout": {...}}``); studio.js draws them with the
plotly.js the studio serves. Each chart plots entries with ``label``, ``mean``, ``ci_low``,
``ci_high``, ``cost_per_1k`` and ``latency_p50`` (a leaderboard entry, an improve approach), and
comes with notes: the entries left out and why, so that no point vanishes without a word.

The axes and the other pieces live in :mod:`modelatlas.studio.chart_parts`, the notes in
:mod:`modelatlas.studio.chart_notes`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from modelatlas.studio.chart_notes import left_out
from modelatlas.studio.chart_parts import (
    COLOUR,
    Entry,
    crowded,
    error_bars,
    layout,
    numbered,
    quality_axis,
    short,
    zero_axis,
)

ALL_FREE = "all free: every model here ran at no cost, so there is no cost axis to draw"


class Chart(NamedTuple):
    """One chart of a page: its element id, its figure (None: nothing to draw, the notes say why),
    its caption, the notes shown under it and the labels of its numbered points, in order."""

    id: str
    figure: dict[str, Any] | None
    caption: str
    notes: list[str]
    key: list[str]


def figures(entries: Sequence[Entry], metric: str, per: str = "model") -> list[Chart]:
    """Quality with its 95% CI, quality against cost and against latency; none without entries."""
    if not entries or not metric:
        return []
    return [quality_chart(entries, metric, per), cost_chart(entries, metric), latency_chart(entries, metric)]


def quality_chart(entries: Sequence[Entry], metric: str, per: str = "model") -> Chart:
    """One bar per entry with its 95% CI; sideways (labels down the side) when there are many
    entries or long labels, so that no label is clipped or sits on another."""
    shown = [e for e in entries if e.mean is not None]
    caption = f"{metric} per {per}, with its 95% CI"
    notes = left_out(entries, metric)
    if not shown:
        return Chart("chart-quality", None, caption, notes, [])
    labels = [e.label for e in shown]
    sideways = crowded(labels)
    values, places = ("x", "y") if sideways else ("y", "x")
    bar = {
        "type": "bar",
        "orientation": "h" if sideways else "v",
        places: labels,
        values: [e.mean for e in shown],
        "marker": {"color": COLOUR},
        f"error_{values}": error_bars(shown),
        "hovertemplate": f"%{{{places}}}<br>{metric} %{{{values}:.3f}}<extra></extra>",
    }
    value_axis = quality_axis(metric, shown, f"{metric} (95% CI)")
    label_axis = {"automargin": True, "tickvals": labels, "ticktext": [short(x) for x in labels]}
    if sideways:
        label_axis["autorange"] = "reversed"  # the first entry (the best, on a leaderboard) on top
        figure = {
            "data": [bar],
            "layout": layout(value_axis, label_axis, height=max(360, 28 * len(shown) + 90)),
        }
    else:
        figure = {"data": [bar], "layout": layout(label_axis, value_axis)}
    return Chart("chart-quality", figure, caption, notes, [])


def cost_chart(entries: Sequence[Entry], metric: str) -> Chart:
    """Quality against cost; no chart, and a note saying so, when every entry plotted cost nothing."""
    chart = _scatter(entries, metric, "cost_per_1k", "USD per 1,000 items", "chart-cost", "cost")
    costs = [e.cost_per_1k for e in entries if e.mean is not None and e.cost_per_1k is not None]
    if costs and not any(costs):
        return chart._replace(figure=None, notes=[ALL_FREE, *chart.notes], key=[])
    return chart


def latency_chart(entries: Sequence[Entry], metric: str) -> Chart:
    """Quality against the median latency per item."""
    return _scatter(entries, metric, "latency_p50", "median latency per item (s)", "chart-latency", "latency")


def _scatter(entries: Sequence[Entry], metric: str, key: str, title: str, chart_id: str, what: str) -> Chart:
    """Numbered points with their 95% CI as error bars; the labels are in the hover and in the key
    under the chart, never printed beside the points (where they would sit on each other)."""
    shown = [e for e in entries if e.mean is not None and getattr(e, key) is not None]
    caption = f"{metric} against {what}"
    notes = left_out(entries, metric, key)
    if not shown:
        return Chart(chart_id, None, caption, notes, [])
    labels, xs, ys = (
        [e.label for e in shown],
        [getattr(e, key) for e in shown],
        [e.mean for e in shown if e.mean is not None],
    )
    texts, hovers = numbered(labels, xs, ys)
    points = {
        "type": "scatter",
        "mode": "markers+text",
        "x": xs,
        "y": ys,
        "text": texts,
        "customdata": hovers,
        "textposition": "middle center",
        "textfont": {"color": "#ffffff", "size": 11},
        "cliponaxis": False,
        "marker": {"color": COLOUR, "size": [max(20, 8 + 7 * len(t)) for t in texts]},
        "error_y": error_bars(shown),
        "hovertemplate": "%{customdata}<br>%{x:.4g}, " + metric + " %{y:.3f}<extra></extra>",
    }
    figure = {"data": [points], "layout": layout(zero_axis(title), quality_axis(metric, shown, metric))}
    return Chart(chart_id, figure, caption, notes, labels)
