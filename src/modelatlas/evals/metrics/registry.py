"""The metric registry: a :class:`modelatlas.registry.Registry` of metric factories.

Metrics are found through the entry-point group ``modelatlas.metrics``; the built-in ones are
declared there too, in modelatlas' own ``pyproject.toml``, so they take the same path as a
plugin's. An entry point names ``"module:attr"`` (a Metric class or a factory that returns a
Metric) and is imported only when first used.

A run's options arrive as one flat mapping (the CLI's ``--k`` and ``--pattern``);
:func:`make_metrics` routes each key to the chosen metrics that take it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from modelatlas.errors import ConfigError, ModelAtlasError, UnknownMetricError, suggest
from modelatlas.evals.metrics.base import Metric
from modelatlas.registry import Registry

GROUP = "modelatlas.metrics"

MetricFactory = Callable[[], Metric]

METRICS: Registry[MetricFactory] = Registry(
    "metric", GROUP, check=callable, expected="a class or a function", unknown=UnknownMetricError
)


def metric_names() -> list[str]:
    """Every registered metric name, sorted."""
    return METRICS.names()


def register_metric(name: str, target: str | MetricFactory) -> None:
    """Register a metric by name, as a class, a factory, or a lazy ``"module:attr"`` path."""
    METRICS.register(name, target)


def get_metric(name: str, /, **options: Any) -> Metric:
    """A new instance of the metric registered as ``name``, made with these options.

    A miss answers with "did you mean"; an option the metric does not take, or a value it cannot
    use, is a ConfigError that names it."""
    metric = METRICS.require(name)()
    if not isinstance(metric, Metric):
        raise ConfigError(
            f"The metric {name!r} made a {type(metric).__name__}, not a Metric.",
            hint="A metric entry point must name a Metric subclass or a factory that returns one.",
        )
    return metric.with_options(options)


def make_metrics(names: Iterable[str], options: Mapping[str, Any] | None = None) -> dict[str, Metric]:
    """The named metrics (each once, in order), each made with the keys of ``options`` it takes.

    A key that no named metric takes is an error naming the metrics that do (before options were
    typed, every metric got every key and a stray one was silently ignored)."""
    made = {name: get_metric(name) for name in dict.fromkeys(names)}
    given = dict(options or {})
    for key in given:
        if not any(key in m.Options.model_fields for m in made.values()):
            raise _untaken(key, made)
    return {
        name: metric.with_options({k: v for k, v in given.items() if k in metric.Options.model_fields})
        for name, metric in made.items()
    }


def taken_options(names: Iterable[str], options: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``options`` that at least one of the named metrics takes."""
    metrics = [get_metric(name) for name in dict.fromkeys(names)]
    return {k: v for k, v in options.items() if any(k in m.Options.model_fields for m in metrics)}


def _untaken(key: str, chosen: dict[str, Metric]) -> ConfigError:
    takers = [name for name, fields in _options_by_metric().items() if key in fields]
    own = sorted({f for m in chosen.values() for f in m.Options.model_fields})
    close = suggest(key, own)
    hint = f"Did you mean {' or '.join(map(repr, close))}? " if close else ""
    if takers:
        hint += f"{key!r} is an option of {', '.join(takers)}: add one with --metric, or drop it."
    else:
        by_option: dict[str, list[str]] = {}
        for name, fields in _options_by_metric().items():
            for field in fields:
                by_option.setdefault(field, []).append(name)
        listed = "; ".join(f"{o} ({', '.join(n)})" for o, n in sorted(by_option.items()))
        hint += f"The options and the metrics that take them: {listed or 'none'}."
    return ConfigError(f"No chosen metric takes the option {key!r} (chosen: {', '.join(chosen)}).", hint=hint)


def _options_by_metric() -> dict[str, list[str]]:
    """Every registered metric's option names (a metric that fails to load is left out)."""
    found = {}
    for name in metric_names():
        try:
            found[name] = list(get_metric(name).Options.model_fields)
        except ModelAtlasError:
            continue
    return found
