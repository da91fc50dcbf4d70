"""One way to write money and intervals, in the CLI, the reports and the studio alike.

Money: "$0" for nothing; "$1,234.56" from a dollar up; below a dollar two significant digits
past the zeros ("$0.42", "$0.042", "$0.0000083"), so a small cost is never shown as "$0.0000".
An interval: "0.620 [0.480, 0.750]" (the estimate, then its 95% bounds)."""

from __future__ import annotations

import math


def usd(value: float | None, unknown: str = "-") -> str:
    """``value`` US dollars as text; ``unknown`` when there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return unknown
    if value == 0:
        return "$0"
    sign, size = ("-" if value < 0 else ""), abs(value)
    if size >= 1:
        return f"{sign}${size:,.2f}"
    decimals = max(2, 1 - math.floor(math.log10(size)))
    text = f"{size:.{decimals}f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{sign}${whole}.{fraction.ljust(2, '0')}"


def interval(mean: float | None, low: float | None = None, high: float | None = None, digits: int = 3) -> str:
    """``0.620 [0.480, 0.750]``; just the estimate without bounds; "-" without an estimate."""
    if mean is None:
        return "-"
    text = f"{mean:.{digits}f}"
    return text if low is None or high is None else f"{text} [{low:.{digits}f}, {high:.{digits}f}]"
