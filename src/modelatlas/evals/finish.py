"""After a run: its summary (statistics), and the results that model cards show."""

from __future__ import annotations

from modelatlas.evals import records
from modelatlas.evals.results import RunSummary
from modelatlas.evals.types import RunInfo


def summary_for(run_id: str) -> RunSummary:
    """The run's summary (what `modelatlas eval --json` prints), computed from its stored items."""
    from modelatlas.evals.metrics.registry import get_metric
    from modelatlas.evals.summary import summarize

    run = records.get_run(run_id)
    metrics = {name: get_metric(name) for name in run.metrics}
    return summarize(run, records.load_items(run_id), metrics, records.load_pairs(run_id))


def publish(run: RunInfo, summary: RunSummary) -> None:
    """Write each arm's metric means to the store, where model cards read them."""
    from pathlib import Path

    from modelatlas.store.results import delete_results, record_result

    delete_results(run.id)
    for arm in summary.models:
        for metric, stats in arm.metrics.items():
            if stats.mean is None:
                continue
            record_result(
                run.id,
                arm.model_id,
                Path(run.dataset_path).name,
                metric,
                stats.mean,
                n=stats.n or arm.n,
                ci_low=stats.ci_low,
                ci_high=stats.ci_high,
                strategy=arm.strategy,
                dataset_hash=run.dataset_hash,
            )
