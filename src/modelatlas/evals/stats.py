"""Confidence intervals and significance tests for evaluation results.

Everything is seeded (``numpy.random.default_rng(seed)``), so a report computed twice from the
same results gives the same intervals and p-values. The bootstrap works on item *indices*: the
statistic is recomputed from a resample of items, which is what corpus-level metrics (corpus
BLEU, macro F1) need, since their aggregate is not a mean of per-item values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from modelatlas.errors import MissingExtraError

Stat = Callable[[Any], "float | None"]  # called with a numpy array of item indices

RESAMPLES = 2000
PERMUTATIONS = 10000
_CHUNK_CELLS = 1_000_000  # how many random numbers to draw at once


def _numpy():
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - numpy comes with the eval extra
        raise MissingExtraError("numpy", "eval") from exc
    return numpy


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _index_chunks(n: int, resamples: int, seed: int) -> Iterator[Any]:
    """Resamples of ``range(n)`` with replacement, as (rows, n) arrays, drawn chunk by chunk."""
    np = _numpy()
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // max(n, 1))
    done = 0
    while done < resamples:
        k = min(rows, resamples - done)
        yield rng.integers(0, n, size=(k, n))
        done += k


def _interval(values: list[float], level: float) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    np = _numpy()
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(np.asarray(values, dtype=float), [100 * alpha, 100 * (1 - alpha)])
    return _finite(low), _finite(high)


def bootstrap_ci(
    n: int, stat: Stat, *, resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of ``stat`` over ``n`` items.

    ``stat(indices)`` computes the statistic on the items at ``indices`` (a resample, with
    repeats). Resamples where it returns None (or a non-finite number) are skipped; with no
    items, or no usable resample, the interval is ``(None, None)``.
    """
    if n <= 0:
        return None, None
    values: list[float] = []
    for chunk in _index_chunks(n, resamples, seed):
        for indices in chunk:
            value = _finite(stat(indices))
            if value is not None:
                values.append(value)
    return _interval(values, level)


def paired_bootstrap(
    n: int,
    stat_a: Stat,
    stat_b: Stat,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float | None, float | None, float | None]:
    """``(diff, low, high)`` of ``stat_a - stat_b``, resampling the same items for both arms."""
    if n <= 0:
        return None, None, None
    np = _numpy()
    everything = np.arange(n)
    a, b = _finite(stat_a(everything)), _finite(stat_b(everything))
    diff = a - b if a is not None and b is not None else None
    values: list[float] = []
    for chunk in _index_chunks(n, resamples, seed):
        for indices in chunk:
            a, b = _finite(stat_a(indices)), _finite(stat_b(indices))
            if a is not None and b is not None:
                values.append(a - b)
    low, high = _interval(values, level)
    return _finite(diff), low, high


def permutation_test(
    a: Sequence[float], b: Sequence[float], *, resamples: int = PERMUTATIONS, seed: int = 0
) -> float:
    """Two-sided paired permutation test: random sign flips of the per-item differences.

    ``p = (count(|permuted mean| >= |observed mean|) + 1) / (resamples + 1)``; identical arms
    give 1.0.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    np = _numpy()
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(diffs)
    if n == 0:
        return 1.0
    observed = abs(diffs.mean())
    threshold = observed - 1e-12 * max(1.0, observed)  # float noise must not hide ties
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // n)
    count, done = 0, 0
    while done < resamples:
        k = min(rows, resamples - done)
        signs = rng.integers(0, 2, size=(k, n)) * 2.0 - 1.0
        count += int(np.count_nonzero(np.abs(signs @ diffs) / n >= threshold))
        done += k
    return (count + 1) / (resamples + 1)


def mcnemar(a: Sequence[bool | int | float], b: Sequence[bool | int | float]) -> float:
    """Exact McNemar test: a two-sided binomial test (p = 0.5) on the discordant pairs.

    Values are read as booleans (1/0, True/False, or a score of at least 0.5). With no
    discordant pair the p-value is 1.0.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    try:
        from scipy.stats import binomtest
    except ImportError as exc:  # pragma: no cover - scipy comes with the eval extra
        raise MissingExtraError("scipy", "eval") from exc
    a_only = sum(1 for x, y in zip(a, b) if _truth(x) and not _truth(y))
    b_only = sum(1 for x, y in zip(a, b) if _truth(y) and not _truth(x))
    if a_only + b_only == 0:
        return 1.0
    return float(min(1.0, binomtest(a_only, a_only + b_only, 0.5, alternative="two-sided").pvalue))


def _truth(value: bool | int | float) -> bool:
    return bool(value) if isinstance(value, bool) else float(value) >= 0.5


def percentiles(
    values: Sequence[float | None], qs: Sequence[float] = (50, 90, 95, 99)
) -> dict[float, float | None]:
    """``{q: the q-th percentile}`` of the values that are not None (None for every q if none)."""
    np = _numpy()
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not kept:
        return {q: None for q in qs}
    found = np.percentile(np.asarray(kept), list(qs))
    return {q: _finite(v) for q, v in zip(qs, found)}
