"""Short human forms of catalog facts, shared by the CLI tables, the cards and the studio."""

from __future__ import annotations

from modelatlas.catalog.records import ModelRecord
from modelatlas.formats import usd


def tokens(n: int | None) -> str:
    """8192 -> '8K', 1047576 -> '1M'; unknown -> '?'."""
    if n is None:
        return "?"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g}M"
    if n >= 1_000:
        return f"{n / 1_000:.3g}K"
    return str(n)


def parameters(n: int | None) -> str:
    """134515008 -> '135M'; unknown -> 'unknown'."""
    if n is None:
        return "unknown"
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def money(value: float | None, record: ModelRecord | None = None) -> str:
    """USD per 1M tokens (modelatlas.formats.usd); a local model costs "$0" per token; unknown: "?"."""
    if value is None:
        return "$0" if record is not None and record.hosting == "local" else "?"
    return usd(value)


def badges(record: ModelRecord) -> str:
    marks = []
    if record.hosting == "local":
        marks.append("local")
    if record.open_weights:
        marks.append("open")
    if record.runnable:
        marks.append("runnable")
    if record.fits is False:
        marks.append("too big")
    if record.capabilities.reasoning:
        marks.append("reasoning")
    if record.capabilities.tool_calling:
        marks.append("tools")
    return " ".join(marks)


def parse_tokens(text: str, option: str = "--min-context") -> int:
    """A token count as people write it: 8192, 32k, 128K, 1M, 1.5m (k = 1,000, M = 1,000,000,
    so "32k" lets a 32,768-token model through)."""
    from modelatlas.errors import ConfigError

    value = text.strip().lower().replace(",", "").replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(value[-1:], 1)
    number = value[:-1] if scale > 1 else value
    try:
        count = int(float(number) * scale)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(
            f"{option} must be a number of tokens, not {text!r}.", hint=f"Write it like {option} 32k or 8192."
        )
    return count
