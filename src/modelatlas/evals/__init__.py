"""Evaluation: datasets, metrics, the runner, statistics and reports."""

from __future__ import annotations

from modelatlas.evals.datasets import Dataset, Fields, load_dataset

__all__ = ["Dataset", "Fields", "evaluate", "load_dataset", "resume"]


async def evaluate(plan, progress=None) -> tuple[str, dict]:
    """Run ``plan`` from the start; returns the run id and its summary."""
    from modelatlas.evals import runner
    from modelatlas.evals.finish import publish, summary_for

    run = runner.start_run(plan)
    await runner.execute(plan, run, progress)
    summary = summary_for(run.id)
    publish(run, summary)
    return run.id, summary


async def resume(plan, run_id: str, progress=None) -> tuple[str, dict]:
    """Finish an interrupted run: only what is not stored yet is done."""
    from modelatlas.errors import ConfigError
    from modelatlas.evals import records, runner
    from modelatlas.evals.finish import publish, summary_for

    run = records.get_run(run_id)
    if run.dataset_hash != plan.dataset.hash:
        raise ConfigError(
            f"The dataset changed since run {run_id} started (its content hash differs).",
            hint="Resume with the same file, or start a new run.",
        )
    await runner.execute(plan, run, progress)
    summary = summary_for(run_id)
    publish(run, summary)
    return run_id, summary
