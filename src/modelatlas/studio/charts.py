"""Plotly figures as plain data (``{"data": [...], "layout": {...}}``); studio.js draws them with the
plotly.js the studio serves. Each figure plots entries with ``label``, ``mean``, ``ci_low``,
``ci_high``, ``cost_per_1k`` and ``latency_p50`` (a leaderboard entry, an improve approach)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

COLOUR = "#2457a6"


class Entry(Protocol):
    """What a chart reads of each thing it plots."""

    @property
    def label(self) -> str: ...
    @property
    def mean(self) -> float | None: ...
    @property
    def ci_low(self) -> float | None: ...
    @property
    def ci_high(self) -> float | None: ...
    @property
    def cost_per_1k(self) -> float | None: ...
    @property
    def latency_p50(self) -> float | None: ...


def figures(entries: Sequence[Entry], metric: str, per: str = "model") -> list[tuple[str, dict, str]]:
    """(element id, figure, caption) of quality with its CI, quality against cost and against latency."""
    if not entries or not metric:
        return []
    return [
        ("chart-quality", quality_chart(entries, metric), f"{metric} per {per}, with its 95% CI"),
        ("chart-cost", cost_chart(entries, metric), f"{metric} against cost"),
        ("chart-latency", latency_chart(entries, metric), f"{metric} against latency"),
    ]


def quality_chart(entries: Sequence[Entry], metric: str) -> dict:
    """One bar per entry with its 95% confidence interval."""
    shown = [e for e in entries if e.mean is not None]
    means = [e.mean for e in shown]
    above = [(e.ci_high - e.mean) if e.ci_high is not None else 0 for e in shown]
    below = [(e.mean - e.ci_low) if e.ci_low is not None else 0 for e in shown]
    bar = {
        "type": "bar",
        "x": [e.label for e in shown],
        "y": means,
        "marker": {"color": COLOUR},
        "error_y": {"type": "data", "array": above, "arrayminus": below, "visible": True},
        "hovertemplate": "%{x}<br>" + metric + " %{y:.3f}<extra></extra>",
    }
    return {"data": [bar], "layout": _layout(None, f"{metric} (95% CI)")}


def cost_chart(entries: Sequence[Entry], metric: str) -> dict:
    return _scatter(entries, metric, "cost_per_1k", "USD per 1,000 items")


def latency_chart(entries: Sequence[Entry], metric: str) -> dict:
    return _scatter(entries, metric, "latency_p50", "median latency per item (s)")


def _scatter(entries: Sequence[Entry], metric: str, key: str, title: str) -> dict:
    shown = [e for e in entries if e.mean is not None and getattr(e, key) is not None]
    points = {
        "type": "scatter",
        "mode": "markers+text",
        "x": [getattr(e, key) for e in shown],
        "y": [e.mean for e in shown],
        "text": [e.label for e in shown],
        "textposition": "top center",
        "cliponaxis": False,
        "marker": {"color": COLOUR, "size": 10},
        "hovertemplate": "%{text}<br>%{x:.4g}, " + metric + " %{y:.3f}<extra></extra>",
    }
    return {"data": [points], "layout": _layout(title, metric)}


def _layout(x_title: str | None, y_title: str) -> dict:
    return {
        "xaxis": {"title": {"text": x_title} if x_title else {}, "automargin": True},
        "yaxis": {"title": {"text": y_title}, "automargin": True},
        "showlegend": False,
        "margin": {"t": 30, "r": 50, "b": 60, "l": 60},
        "font": {"family": "system-ui, sans-serif"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
    }
