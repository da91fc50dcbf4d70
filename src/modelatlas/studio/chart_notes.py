"""The notes under a chart (see :mod:`modelatlas.studio.charts`): which entries it leaves out or
shows without an error bar, and why, as far as each entry tells it, so that no point vanishes
without a word (a cached run's arms have no latency, for one)."""

from __future__ import annotations

from collections.abc import Sequence

from modelatlas.studio.chart_parts import Entry


def left_out(entries: Sequence[Entry], metric: str, key: str | None = None) -> list[str]:
    """A note naming the entries a chart cannot show (no mean, no ``key``) or shows without an
    error bar, with the reason as far as each entry tells it."""
    groups: dict[tuple[str, str], list[str]] = {}  # one note per reason, naming every entry it hits
    for e in entries:
        why = _why_missing(e, metric, key)
        if why:
            groups.setdefault(("left out", why), []).append(e.label)
        elif e.ci_low is None or e.ci_high is None:
            groups.setdefault(("no error bar", "no 95% CI could be computed"), []).append(e.label)
    return [f"{kind}: {', '.join(labels)} ({why})" for (kind, why), labels in groups.items()]


def _why_missing(e: Entry, metric: str, key: str | None) -> str | None:
    if e.mean is None:
        every = e.n and e.errors >= e.n
        return f"no {metric}: {'every answer was an error' if every else 'no item could be scored'}"
    if key == "cost_per_1k" and e.cost_per_1k is None:
        return "no cost: the price is not known"
    if key == "latency_p50" and e.latency_p50 is None:
        return f"no latency: {_untimed(e)}"
    return None


def _untimed(e: Entry) -> str:
    """Why no call of the entry was timed: answers from the cache and errors are not."""
    if e.cached and e.cached >= e.n:
        return "every answer came from the cache"
    if e.cached and e.cached + e.errors >= e.n:
        return "the answers came from the cache or were errors"
    if e.n and e.errors >= e.n:
        return "every call failed"
    return "no call was timed (answers from the cache and errors are not)"
