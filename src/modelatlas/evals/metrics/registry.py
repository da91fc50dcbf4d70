"""The metric registry.

Metrics are found through the entry-point group ``modelatlas.metrics``; the built-in ones are
declared there too, in modelatlas' own ``pyproject.toml``, so they take the same path as a
plugin's. An entry point names ``"module:attr"`` (a Metric class or a factory that returns a
Metric) and is imported only when first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points

from modelatlas.errors import ConfigError, suggest
from modelatlas.evals.metrics.base import Metric

GROUP = "modelatlas.metrics"

MetricFactory = Callable[[], Metric]

# Registered at run time with register_metric(); name -> "module:attr" or a class/factory.
_extra: dict[str, str | MetricFactory] = {}


@cache
def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def metric_names() -> list[str]:
    """Every registered metric name, sorted."""
    return sorted(set(_entry_points()) | set(_extra))


def register_metric(name: str, target: str | MetricFactory) -> None:
    """Register a metric by name, as a class, a factory, or a lazy ``"module:attr"`` path."""
    _extra[name] = target
    _factory.cache_clear()


def get_metric(name: str) -> Metric:
    """A new instance of the metric registered as ``name``; a miss answers with "did you mean"."""
    factory = _factory(name)
    metric = factory()
    if not isinstance(metric, Metric):
        raise ConfigError(
            f"The metric {name!r} made a {type(metric).__name__}, not a Metric.",
            hint="A metric entry point must name a Metric subclass or a factory that returns one.",
        )
    return metric


@cache
def _factory(name: str) -> MetricFactory:
    target = _extra.get(name) or _entry_points().get(name)
    if target is None:
        known = metric_names()
        found = suggest(name, known)
        did_you_mean = f"Did you mean {' or '.join(repr(n) for n in found)}? " if found else ""
        raise ConfigError(
            f"Unknown metric {name!r}.",
            hint=f"{did_you_mean}Known metrics: {', '.join(known) or 'none'}.",
        )
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attr, None)
    if not callable(factory):
        raise ConfigError(
            f"The metric {name!r} points at {target!r}, which is not a class or a function.",
            hint="Fix the entry point in the plugin's pyproject.toml.",
        )
    return factory
