"""Metrics: score one item's output, and say how the scores of a run aggregate."""

from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.registry import get_metric, metric_names, register_metric

__all__ = ["Context", "Metric", "get_metric", "metric_names", "register_metric"]
