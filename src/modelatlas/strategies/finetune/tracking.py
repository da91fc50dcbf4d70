"""MLflow logging of a fine-tune, when ``MLFLOW_TRACKING_URI`` is set.

mlflow is optional: with the variable set and mlflow missing, one warning says how to install
it and the fine-tune goes on. A failure inside mlflow never stops training either.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

log = logging.getLogger(__name__)
_warned = False


class Tracker:
    """Logs parameters, per-step losses and the outcome of one fine-tune to MLflow, or nothing."""

    def __init__(self, run_name: str, params: dict[str, Any]):
        self._mlflow = _mlflow()
        if self._mlflow is None:
            return
        try:
            self._mlflow.start_run(run_name=run_name)
            self._mlflow.log_params(params)
        except Exception as exc:  # a tracking server that is down must not stop training
            log.warning("MLflow logging is off for this fine-tune: %s", exc)
            self._mlflow = None

    def step(self, step: int, train_loss: float, val_loss: float | None) -> None:
        metrics = (
            {"train_loss": train_loss}
            if val_loss is None
            else {"train_loss": train_loss, "val_loss": val_loss}
        )
        self._call("log_metrics", metrics, step=step)

    def finish(self, status: str, metrics: dict[str, float | None] | None = None) -> None:
        if metrics:
            self._call("log_metrics", {k: v for k, v in metrics.items() if v is not None})
        self._call(
            "end_run",
            status="FINISHED" if status == "done" else "KILLED" if status == "interrupted" else "FAILED",
        )

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        if self._mlflow is None:
            return
        try:
            getattr(self._mlflow, name)(*args, **kwargs)
        except Exception as exc:
            log.warning("MLflow %s failed: %s", name, exc)


def _mlflow() -> Any:
    global _warned
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    try:
        import mlflow
    except ImportError:
        if not _warned:
            _warned = True
            warnings.warn(
                "MLFLOW_TRACKING_URI is set but mlflow is not installed, so this fine-tune is not "
                "logged to MLflow. Install it with: pip install mlflow",
                stacklevel=3,
            )
        return None
    return mlflow
