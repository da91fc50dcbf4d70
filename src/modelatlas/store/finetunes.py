"""Fine-tunes: one row per training job (its settings, state and final losses) and one row per
optimizer step (training loss, and validation loss when it was measured)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from modelatlas.processes import pid_alive, this_host
from modelatlas.store.db import session
from modelatlas.store.schema import FineTune, FineTuneStep, as_utc, utcnow

FIELDS = (
    "id",
    "model_id",
    "base_model",
    "data_hash",
    "params",
    "status",
    "train_loss",
    "val_loss",
    "seconds",
    "adapter_path",
    "created_at",
    "finished_at",
    "owner_pid",
    "owner_host",
)
STATUSES = ("running", "done", "interrupted", "failed")


def start_finetune(
    finetune_id: str, *, model_id: str, base_model: str, data_hash: str, params: dict, adapter_path: str
) -> None:
    """Write the row of a fine-tune that starts now (status "running")."""
    with session() as s:
        s.add(
            FineTune(
                id=finetune_id,
                model_id=model_id,
                base_model=base_model,
                data_hash=data_hash,
                params=params,
                status="running",
                adapter_path=adapter_path,
                owner_pid=os.getpid(),
                owner_host=this_host(),
            )
        )


def record_step(
    finetune_id: str, step: int, epoch: int, train_loss: float, val_loss: float | None = None
) -> None:
    with session() as s:
        s.add(
            FineTuneStep(
                finetune_id=finetune_id,
                step=step,
                epoch=epoch,
                train_loss=float(train_loss),
                val_loss=None if val_loss is None else float(val_loss),
            )
        )


def finish_finetune(
    finetune_id: str,
    status: str,
    *,
    train_loss: float | None = None,
    val_loss: float | None = None,
    seconds: float | None = None,
) -> datetime:
    """Mark a fine-tune done, interrupted or failed; returns the time it finished (UTC)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    now = utcnow()
    with session() as s:
        row = s.get(FineTune, finetune_id)
        if row is None:
            raise LookupError(f"No fine-tune {finetune_id!r} in the store.")
        row.status, row.finished_at = status, now
        row.train_loss, row.val_loss, row.seconds = train_loss, val_loss, seconds
    return now


def reap_finetunes() -> list[dict[str, Any]]:
    """Mark "interrupted" the running fine-tunes whose process is gone (killed, or the machine
    went down) and return them. Only rows trained on this host are judged: a process on
    another machine that shares the database cannot be seen from here."""
    host = this_host()
    query = select(FineTune).where(FineTune.status == "running")
    reaped = []
    with session() as s:
        for row in s.scalars(query):
            if row.owner_host not in (None, host) or pid_alive(row.owner_pid):
                continue
            row.status, row.finished_at = "interrupted", utcnow()
            steps = select(func.count()).where(FineTuneStep.finetune_id == row.id)
            reaped.append({**_as_dict(row), "steps": s.scalar(steps) or 0})
    return reaped


def get_finetune(finetune_id: str) -> dict[str, Any] | None:
    with session() as s:
        row = s.get(FineTune, finetune_id)
        return None if row is None else _as_dict(row)


def finetune_steps(finetune_id: str) -> list[dict[str, Any]]:
    """The steps of a fine-tune, in order."""
    query = select(FineTuneStep).where(FineTuneStep.finetune_id == finetune_id).order_by(FineTuneStep.step)
    with session() as s:
        return [
            {"step": r.step, "epoch": r.epoch, "train_loss": r.train_loss, "val_loss": r.val_loss}
            for r in s.scalars(query)
        ]


def list_finetunes(
    *,
    base_model: str | None = None,
    data_hash: str | None = None,
    model_id: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Fine-tunes matching every filter given, newest first (those whose process died are
    marked interrupted first, so no listing shows them running)."""
    reap_finetunes()
    query = select(FineTune).order_by(FineTune.created_at.desc())
    for column, value in (
        (FineTune.base_model, base_model),
        (FineTune.data_hash, data_hash),
        (FineTune.model_id, model_id),
        (FineTune.status, status),
    ):
        if value is not None:
            query = query.where(column == value)
    with session() as s:
        return [_as_dict(row) for row in s.scalars(query)]


def _as_dict(row: FineTune) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in FIELDS}
    for name in ("created_at", "finished_at"):
        data[name] = as_utc(data[name])
    data["params"] = dict(data["params"] or {})
    return data
