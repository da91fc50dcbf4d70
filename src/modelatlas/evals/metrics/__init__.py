"""Metrics: score one item's output (or compare two), and say how the scores of a run aggregate."""

from modelatlas.evals.metrics.base import (
    Context,
    ItemMetric,
    Metric,
    PairMetric,
    PairwiseMetric,
    is_pair_metric,
)
from modelatlas.evals.metrics.options import MetricOptions, NoOptions
from modelatlas.evals.metrics.registry import (
    METRICS,
    get_metric,
    make_metrics,
    metric_names,
    register_metric,
    taken_options,
)

__all__ = [
    "METRICS",
    "Context",
    "ItemMetric",
    "Metric",
    "MetricOptions",
    "NoOptions",
    "PairMetric",
    "PairwiseMetric",
    "get_metric",
    "is_pair_metric",
    "make_metrics",
    "metric_names",
    "register_metric",
    "taken_options",
]
