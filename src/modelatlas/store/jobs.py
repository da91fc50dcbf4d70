"""Studio jobs: long work started from the studio (an evaluation), one row each, so its state
outlives the page that started it and the studio process itself."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from modelatlas.store.db import session
from modelatlas.store.schema import Run, RunItem, StudioJob, as_utc, utcnow

STATUSES = ("queued", "running", "done", "failed")
FINISHED = ("done", "failed")
CHANGEABLE = ("status", "done", "total", "run_id", "error", "pid")


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    done: int = 0
    total: int = 0
    run_id: str | None = None
    error: str | None = None
    pid: int | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def create_job(kind: str, params: dict[str, Any], *, total: int = 0) -> Job:
    """A new job, queued."""
    job_id = f"job-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    with session() as s:
        row = StudioJob(
            id=job_id, kind=kind, params=params, status="queued", done=0, total=total, created_at=utcnow()
        )
        s.add(row)
        s.flush()
        return _job(row)


def get_job(job_id: str) -> Job | None:
    with session() as s:
        row = s.get(StudioJob, job_id)
        return None if row is None else _job(row)


def list_jobs(limit: int = 50, kind: str | None = None) -> list[Job]:
    """Jobs, newest first."""
    query = select(StudioJob).order_by(StudioJob.created_at.desc()).limit(limit)
    if kind is not None:
        query = query.where(StudioJob.kind == kind)
    with session() as s:
        return [_job(row) for row in s.scalars(query)]


def update_job(job_id: str, **changes: Any) -> Job:
    """Change a job's state (status, done, total, run_id, error, pid); finishing stamps the time."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise ValueError(f"A job has no field {', '.join(sorted(unknown))} to change.")
    status = changes.get("status")
    if status is not None and status not in STATUSES:
        raise ValueError(f"A job's status is one of {', '.join(STATUSES)}, not {status!r}.")
    with session() as s:
        row = s.get(StudioJob, job_id)
        if row is None:
            raise LookupError(f"No studio job {job_id!r} in the store.")
        for name, value in changes.items():
            setattr(row, name, value)
        if status in FINISHED and row.finished_at is None:
            row.finished_at = utcnow()
        s.flush()
        return _job(row)


def find_run(name: str, since: datetime) -> tuple[str, str, int] | None:
    """(id, status, expected items) of the newest run named ``name`` created at ``since`` or later."""
    query = (
        select(Run).where(Run.name == name, Run.created_at >= since).order_by(Run.created_at.desc()).limit(1)
    )
    with session() as s:
        run = s.scalar(query)
        if run is None:
            return None
        config = run.config or {}
        arms = config.get("params", {}).get("arms") or [
            (m, st) for m in config.get("models", []) for st in config.get("strategies", []) or [None]
        ]
        return run.id, run.status, run.dataset_n * max(1, len(arms))


def items_done(run_id: str) -> int:
    """How many answers of a run are stored."""
    with session() as s:
        return s.scalar(select(func.count()).select_from(RunItem).where(RunItem.run_id == run_id)) or 0


def _job(row: StudioJob) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        status=row.status,
        params=dict(row.params or {}),
        done=row.done,
        total=row.total,
        run_id=row.run_id,
        error=row.error,
        pid=row.pid,
        created_at=as_utc(row.created_at),
        finished_at=as_utc(row.finished_at),
    )
