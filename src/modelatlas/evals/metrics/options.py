"""A metric's own options: a pydantic model per metric, checked when the metric is made.

Before typed options (issue 12) one ``metric_options`` dict went to every metric and each read
the keys it knew with ``.get``, so a typo was silently ignored and a default could differ by
caller (``mrr`` was MRR@5 from the CLI, which always sent ``k=5``, and unbounded from Python).
Now each metric declares ``Options`` with one default per option; a key it does not take, or a
value it cannot use, is a :class:`ConfigError` that names the option, says "did you mean" and
lists what the metric takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from modelatlas.errors import ConfigError, suggest

OptionsT = TypeVar("OptionsT", bound="MetricOptions")


class MetricOptions(BaseModel):
    """The base of every metric's options: typed, with defaults; an unknown key is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(MetricOptions):
    """The options of a metric that takes none."""


def describe(model: type[MetricOptions]) -> str:
    """The options a model declares, with their defaults: "k (default 5), pattern"."""
    parts = []
    for key, field in model.model_fields.items():
        parts.append(key if field.is_required() else f"{key} (default {field.default!r})")
    return ", ".join(parts)


def allowed_hint(metric: str, model: type[MetricOptions]) -> str:
    listed = describe(model)
    return f"Options of {metric}: {listed}." if listed else f"The metric {metric} takes no options."


def parse_options(metric: str, model: type[OptionsT], raw: Mapping[str, Any]) -> OptionsT:
    """``raw`` checked as the options of ``metric``; a ConfigError that names what is wrong."""
    for key in raw:
        if key not in model.model_fields:
            close = suggest(key, list(model.model_fields))
            did_you_mean = f"Did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise ConfigError(
                f"The metric {metric} has no option {key!r}.",
                hint=did_you_mean + allowed_hint(metric, model),
            )
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(_problem(metric, exc), hint=allowed_hint(metric, model)) from None


def _problem(metric: str, exc: ValidationError) -> str:
    """The first error, in words: "The metric ndcg's option k must be ... , not 0."."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "options"
    cause = err.get("ctx", {}).get("error")
    if err["type"] == "value_error" and cause is not None:
        return f"The metric {metric}'s option {key} {cause}."
    return f"The metric {metric}'s option {key}: {err['msg']}, not {err['input']!r}."
