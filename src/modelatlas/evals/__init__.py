"""Evaluation: datasets, metrics, the runner, statistics and reports."""

from __future__ import annotations

from modelatlas.evals.datasets import Dataset, Fields, load_dataset
from modelatlas.evals.results import Estimate, RunResult, RunSummary

__all__ = ["Dataset", "Estimate", "Fields", "RunResult", "RunSummary", "evaluate", "load_dataset", "resume"]


async def evaluate(plan, progress=None) -> RunResult:
    """Run ``plan`` from the start; returns the run (as stored when it ended) and its summary."""
    from modelatlas.evals import runner

    run = runner.start_run(plan)
    await runner.execute(plan, run, progress)
    return _finished(run.id)


async def resume(plan, run_id: str, progress=None) -> RunResult:
    """Finish an interrupted run: only what is not stored yet is done."""
    from modelatlas.errors import ConfigError
    from modelatlas.evals import records, runner

    run = records.get_run(run_id)
    if run.dataset_hash != plan.dataset.hash:
        raise ConfigError(
            f"The dataset changed since run {run_id} started (its content hash differs).",
            hint="Resume with the same file, or start a new run.",
        )
    await runner.execute(plan, run, progress)
    return _finished(run_id)


def _finished(run_id: str) -> RunResult:
    """The run as it ended, its summary written where model cards read it, and its warnings said."""
    from modelatlas.evals import records
    from modelatlas.evals.finish import publish, summary_for

    run = records.get_run(run_id)  # with its final status and finish time
    summary = summary_for(run_id)
    publish(run, summary)
    warn_short_examples(summary)
    return RunResult(run=run, summary=summary)


def warn_short_examples(summary: RunSummary) -> None:
    """Say which few-shot arms sent fewer examples than asked (the context guard, a small pool):
    an arm that sent none is zero-shot under another name, and its comparison says nothing."""
    import logging

    log = logging.getLogger(__name__)
    for arm in summary.models:
        if not arm.items_short:
            continue
        if arm.items_without_examples == arm.n:
            log.warning("%s sent no examples at all: it ran as zero-shot.", arm.model)
        else:
            log.warning(
                "%s: %d of %d items got fewer examples than asked (%d missing in all).",
                arm.model,
                arm.items_short,
                arm.n,
                arm.examples_short,
            )
