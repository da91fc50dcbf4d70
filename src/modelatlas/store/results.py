"""Evaluation results: the harness writes one row per model, dataset, strategy and metric of a
run; model cards and leaderboards read them back."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select

from modelatlas.errors import InvalidRequestError
from modelatlas.store.db import session
from modelatlas.store.schema import EvalResult, as_utc

FIELDS = (
    "id",
    "run_id",
    "model_id",
    "dataset",
    "dataset_hash",
    "strategy",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "created_at",
)


def record_result(
    run_id: str,
    model_id: str,
    dataset: str,
    metric: str,
    value: float,
    *,
    n: int,
    ci_low: float | None = None,
    ci_high: float | None = None,
    strategy: str | None = None,
    dataset_hash: str | None = None,
) -> int:
    """Store one score (``value`` over ``n`` items, with an optional 95% CI); returns its row id."""
    _check(value, n, ci_low, ci_high)
    row = EvalResult(
        run_id=run_id,
        model_id=model_id,
        dataset=dataset,
        dataset_hash=dataset_hash,
        strategy=strategy,
        metric=metric,
        value=float(value),
        ci_low=None if ci_low is None else float(ci_low),
        ci_high=None if ci_high is None else float(ci_high),
        n=int(n),
    )
    with session() as s:
        s.add(row)
        s.flush()
        return row.id


def results_for_model(model_id: str) -> list[dict[str, Any]]:
    """Every stored score of ``model_id``, newest first; ``created_at`` is a UTC datetime."""
    query = (
        select(EvalResult)
        .where(EvalResult.model_id == model_id)
        .order_by(EvalResult.created_at.desc(), EvalResult.id.desc())
    )
    with session() as s:
        return [_as_dict(row) for row in s.scalars(query)]


def _as_dict(row: EvalResult) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in FIELDS}
    data["created_at"] = as_utc(data["created_at"])
    return data


def _check(value: float, n: int, ci_low: float | None, ci_high: float | None) -> None:
    if not math.isfinite(float(value)):
        raise InvalidRequestError(f"A result value must be a finite number, not {value!r}.")
    if n < 0:
        raise InvalidRequestError(f"n counts the scored items and cannot be negative (got {n}).")
    if (ci_low is None) != (ci_high is None):
        raise InvalidRequestError("Give both ends of the 95% interval (ci_low and ci_high) or neither.")
    if ci_low is not None and ci_low > ci_high:
        raise InvalidRequestError(f"ci_low ({ci_low}) is above ci_high ({ci_high}).")


def delete_results(run_id: str) -> int:
    """Forget a run's summary rows (before writing them anew when a resumed run finishes)."""
    from sqlalchemy import delete

    with session() as s:
        return s.execute(delete(EvalResult).where(EvalResult.run_id == run_id)).rowcount
