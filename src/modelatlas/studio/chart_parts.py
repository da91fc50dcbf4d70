"""The pieces the studio's charts are made of (see :mod:`modelatlas.studio.charts`): the entry they
read, the quality axis fixed to the metric's bounds, axes from 0, error bars, sideways bars when
crowded, numbered points and the layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

COLOUR = "#2457a6"
MANY = 5  # more entries than this and the quality bars turn sideways
LONG = 16  # a label longer than this does too (it would be clipped or sit on its neighbour)
SHORT = 26  # tick labels longer than this are cut in the middle (the hover has the whole label)


class Entry(Protocol):
    """What a chart reads of each thing it plots (a leaderboard entry, an improve approach)."""

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
    @property
    def n(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def cached(self) -> int: ...


def metric_bounds(metric: str) -> tuple[float, float | None] | None:
    """The range the metric's values lie in, as the metric declares it (``Metric.bounds``; a
    binary metric is 0..1); None for a metric that declares none or is not installed."""
    from modelatlas.errors import ModelAtlasError
    from modelatlas.evals.metrics.registry import get_metric

    try:
        made = get_metric(metric)
    except ModelAtlasError:
        return None
    bounds = getattr(made, "bounds", None)
    return bounds if bounds is not None else ((0.0, 1.0) if getattr(made, "binary", False) else None)


def quality_axis(metric: str, entries: Sequence[Entry], title: str) -> dict[str, Any]:
    """The quality axis: a bounded metric's whole range (0 to 1 for accuracy), so that noise does
    not look dramatic, widened only if an interval goes past it; from 0 otherwise (WER can pass 1)."""
    axis: dict[str, Any] = {"title": {"text": title}, "automargin": True}
    low, high = metric_bounds(metric) or (0.0, None)
    if high is None:
        return axis | {"rangemode": "tozero"}
    values = [v for e in entries for v in (e.mean, e.ci_low, e.ci_high) if v is not None]
    return axis | {"range": [min([low, *values]), max([high, *values])]}


def zero_axis(title: str) -> dict[str, Any]:
    """An axis of cost or latency: from 0, so that a small difference is seen as small."""
    return {"title": {"text": title}, "automargin": True, "rangemode": "tozero"}


def error_bars(entries: Sequence[Entry]) -> dict[str, Any]:
    """The 95% CI of each entry's mean as plotly error bars (none drawn where there is no CI)."""
    above = [(e.ci_high - e.mean) if e.ci_high is not None and e.mean is not None else 0 for e in entries]
    below = [(e.mean - e.ci_low) if e.ci_low is not None and e.mean is not None else 0 for e in entries]
    return {"type": "data", "array": above, "arrayminus": below, "visible": True, "color": "#1b1b1b"}


def crowded(labels: Sequence[str]) -> bool:
    """Whether the labels would be clipped or overlap under upright bars."""
    return len(labels) > MANY or any(len(x) > LONG for x in labels)


def short(label: str) -> str:
    """The label cut in the middle, keeping the maker and the end (sizes and strategies differ there)."""
    if len(label) <= SHORT:
        return label
    head = (SHORT - 1) // 2
    return label[:head] + "…" + label[len(label) - (SHORT - 1 - head) :]


def numbered(labels: Sequence[str], xs: Sequence[float], ys: Sequence[float]) -> tuple[list[str], list[str]]:
    """The number on each point (1, 2, ...) and its hover text. Points on (nearly) the same spot
    get one marker numbered for all of them ("1–3,5"), so that no number is printed on another."""
    scale = max(map(abs, xs)) or 1.0, max(map(abs, ys)) or 1.0
    spots: dict[tuple[float, float], list[int]] = {}
    for i, (x, y) in enumerate(zip(xs, ys)):
        spots.setdefault((round(x / scale[0], 2), round(y / scale[1], 2)), []).append(i)
    texts, hovers = [""] * len(labels), list(labels)
    for group in spots.values():
        texts[group[0]] = _spans([i + 1 for i in group])
        hovers[group[0]] = "<br>".join(labels[i] for i in group)
    return texts, hovers


def _spans(numbers: list[int]) -> str:
    """Rising numbers as spans: [1, 2, 3, 5] is "1–3,5"."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ",".join(str(a) if a == b else f"{a}–{b}" for a, b in spans)


def layout(xaxis: dict[str, Any], yaxis: dict[str, Any], height: int | None = None) -> dict[str, Any]:
    """Small margins that grow to fit the labels (automargin), so that a phone keeps the plot."""
    out = {
        "xaxis": xaxis,
        "yaxis": yaxis,
        "showlegend": False,
        "margin": {"t": 16, "r": 24, "b": 16, "l": 16, "pad": 4},
        "font": {"family": "system-ui, sans-serif"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
    }
    return out | ({"height": height} if height else {})
