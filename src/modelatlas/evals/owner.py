"""Who runs a run: the owner's pid and host, and a heartbeat it refreshes while it runs.

A run whose owner is gone (its pid no longer exists on this host, or its heartbeat is stale) was
interrupted, whatever its stored status says: `kill -9` leaves no chance to write "interrupted".
Resuming takes the run over only from a dead owner, with a compare-and-set on the owner columns,
so two `--resume` of one run never run at once.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

from sqlalchemy import update

from modelatlas.errors import ConfigError
from modelatlas.processes import pid_alive, this_host
from modelatlas.store.db import session
from modelatlas.store.schema import Run, as_utc

HEARTBEAT_S = 10.0
# Another host's run can only be judged by its heartbeat; a loop blocked by a long metric or a
# model load may miss a few beats, so stale means twelve missed beats, not one.
STALE_S = 120.0


def host() -> str:
    return this_host()


def mine() -> dict:
    """The owner columns for this process, with a fresh heartbeat."""
    return {"owner_pid": os.getpid(), "owner_host": host(), "heartbeat_at": datetime.now(UTC)}


def alive(pid: int | None, on_host: str | None, heartbeat_at: datetime | None) -> bool:
    """Whether the owner recorded on a run is still running it."""
    if pid is None or heartbeat_at is None:
        return False  # a row from before owners were recorded: nothing can be running it
    age = (datetime.now(UTC) - as_utc(heartbeat_at)).total_seconds()
    if age > STALE_S:
        return False
    return pid_alive(pid) if on_host == host() else True


def busy_error(run_id: str, pid: int | None, on_host: str | None, heartbeat_at) -> ConfigError:
    beat = as_utc(heartbeat_at)
    ago = f", last heartbeat {int((datetime.now(UTC) - beat).total_seconds())} s ago" if beat else ""
    return ConfigError(
        f"Run {run_id} is still running (pid {pid} on host {on_host}{ago}); it cannot be resumed twice.",
        hint=f"Wait for it to finish (`modelatlas runs show {run_id}`), or stop that process "
        f"(kill {pid} on {on_host}) and resume again.",
    )


def check_free(run_id: str) -> None:
    """Raise when a live process other than this one runs ``run_id``."""
    with session() as s:
        row = s.get(Run, run_id)
        if row is not None and _held_by_other(row):
            raise busy_error(run_id, row.owner_pid, row.owner_host, row.heartbeat_at)


def claim(run_id: str) -> None:
    """Make this process the run's owner; refuse while another live process owns it."""
    with session() as s:
        row = s.get(Run, run_id)
        seen = (row.owner_pid, row.owner_host)
        if _held_by_other(row):
            raise busy_error(run_id, row.owner_pid, row.owner_host, row.heartbeat_at)
    # A new transaction: in SQLite's WAL mode a read transaction cannot turn into a write
    # after another process wrote. The WHERE is the compare-and-set: of two resumers who both
    # saw the dead owner, only the first matches.
    with session() as s:
        taken = s.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.owner_pid.is_not_distinct_from(seen[0]),
                Run.owner_host.is_not_distinct_from(seen[1]),
            )
            .values(status="running", **mine())
        ).rowcount
    if taken != 1:
        with session() as s:
            row = s.get(Run, run_id)
            raise busy_error(run_id, row.owner_pid, row.owner_host, row.heartbeat_at)


def beat(run_id: str) -> None:
    """Refresh this process's heartbeat on the run (a no-op if another process took it over)."""
    with session() as s:
        s.execute(
            update(Run)
            .where(Run.id == run_id, Run.owner_pid == os.getpid(), Run.owner_host == host())
            .values(heartbeat_at=datetime.now(UTC))
        )


async def beating(run_id: str) -> None:
    """Refresh the heartbeat until cancelled (off the event loop: a database write can wait)."""
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        await asyncio.to_thread(beat, run_id)


def _held_by_other(row: Run) -> bool:
    if row.status != "running" or (row.owner_pid == os.getpid() and row.owner_host == host()):
        return False
    return alive(row.owner_pid, row.owner_host, row.heartbeat_at)
