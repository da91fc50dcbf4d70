"""Runs in the store: created, written item by item as they finish, read back for reports.

Storing an item or a pair is idempotent: when a (run, model, strategy, item) row exists already
(a run taken over from an owner that was only slow, not dead, answered it too), the first stored
result wins and the later one is dropped. The first is the one any report may have shown already,
and both came from the same model with the same settings.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, select

from modelatlas.errors import ConfigError, suggest
from modelatlas.evals import owner
from modelatlas.evals.types import ItemResult, Output, PairResult, RunInfo, Score
from modelatlas.store.db import session
from modelatlas.store.schema import Run, RunItem, RunPair


def new_run_id() -> str:
    return f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def create_run(info: RunInfo) -> None:
    config = info.model_dump(mode="json", include={"models", "strategies", "metrics", "judge", "params"})
    with session() as s:
        s.add(
            Run(
                id=info.id,
                name=info.name,
                dataset_path=info.dataset_path,
                dataset_hash=info.dataset_hash,
                dataset_n=info.dataset_n,
                config=config,
                status=info.status,
                **owner.mine(),
            )
        )


def get_run(run_id: str) -> RunInfo:
    with session() as s:
        row = s.get(Run, run_id)
        if row is None:
            known = s.scalars(select(Run.id).order_by(Run.created_at.desc()).limit(200)).all()
            near = suggest(run_id, known)
            hint = f"Did you mean {' or '.join(map(repr, near))}?" if near else "See `modelatlas runs list`."
            raise ConfigError(f"No run {run_id!r}.", hint=hint)
        return _info(row)


def list_runs(limit: int = 50) -> list[RunInfo]:
    with session() as s:
        rows = s.scalars(select(Run).order_by(Run.created_at.desc()).limit(limit)).all()
        return [_info(r) for r in rows]


def set_status(run_id: str, status: str) -> None:
    with session() as s:
        row = s.get(Run, run_id)
        row.status = status
        if status in ("done", "failed"):
            row.finished_at = datetime.now(UTC)


def save_item(result: ItemResult) -> None:
    """Write one finished item at once (its own transaction): a crash loses nothing done."""
    scores = {name: score.model_dump(mode="json") for name, score in result.scores.items()}
    row = {
        "run_id": result.run_id,
        "model_id": result.model,
        "strategy": result.strategy,
        "item_id": result.item_id,
        "item_index": result.index,
        "output": result.output.model_dump(mode="json"),
        "scores": scores,
        "created_at": datetime.now(UTC),
    }
    _insert_first(RunItem, row, ["run_id", "model_id", "strategy", "item_id"])


def _insert_first(table, row: dict, unique: list[str]) -> None:
    """INSERT the row unless one with the same ``unique`` columns exists (then keep that one)."""
    with session() as s:
        if s.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        s.execute(insert(table).values(**row).on_conflict_do_nothing(index_elements=unique))


def load_items(run_id: str) -> list[ItemResult]:
    """A run's results in dataset order (each item's arms as they were stored): items decoded
    together finish in any order, and samples, exports and reports should not depend on it."""
    with session() as s:
        order = (RunItem.item_index, RunItem.id)
        rows = s.scalars(select(RunItem).where(RunItem.run_id == run_id).order_by(*order)).all()
        return [
            ItemResult(
                run_id=r.run_id,
                model=r.model_id,
                strategy=r.strategy,
                item_id=r.item_id,
                index=r.item_index,
                output=Output.model_validate(r.output),
                scores={k: Score.model_validate(v) for k, v in r.scores.items()},
            )
            for r in rows
        ]


def item_outputs(run_id: str, item_id: str) -> list[Output]:
    """What every arm of the run stored for one item (its prompt, with any pictures it sent)."""
    with session() as s:
        where = (RunItem.run_id == run_id) & (RunItem.item_id == item_id)
        outputs = s.scalars(select(RunItem.output).where(where).order_by(RunItem.id)).all()
        return [Output.model_validate(output) for output in outputs]


def done_keys(run_id: str) -> set[tuple[str, str, str]]:
    """(model, strategy, item id) of every item already answered in the run."""
    with session() as s:
        rows = s.execute(
            select(RunItem.model_id, RunItem.strategy, RunItem.item_id).where(RunItem.run_id == run_id)
        )
        return {tuple(r) for r in rows}


def save_pair(pair: PairResult) -> None:
    row = {
        "run_id": pair.run_id,
        "metric": pair.metric,
        "a": pair.a,
        "b": pair.b,
        "item_id": pair.item_id,
        "score": pair.score.model_dump(mode="json"),
        "created_at": datetime.now(UTC),
    }
    _insert_first(RunPair, row, ["run_id", "metric", "a", "b", "item_id"])


def all_failed(run_id: str) -> bool:
    """Whether the run has answers and every one of them is an error (a broken model, say)."""
    with session() as s:
        outputs = s.scalars(select(RunItem.output).where(RunItem.run_id == run_id)).all()
    return bool(outputs) and all(o.get("error") for o in outputs)


def load_pairs(run_id: str) -> list[PairResult]:
    with session() as s:
        rows = s.scalars(select(RunPair).where(RunPair.run_id == run_id).order_by(RunPair.id)).all()
        return [
            PairResult(
                run_id=r.run_id,
                metric=r.metric,
                a=r.a,
                b=r.b,
                item_id=r.item_id,
                score=Score.model_validate(r.score),
            )
            for r in rows
        ]


def delete_run(run_id: str) -> None:
    with session() as s:
        s.execute(delete(RunItem).where(RunItem.run_id == run_id))
        s.execute(delete(RunPair).where(RunPair.run_id == run_id))
        s.execute(delete(Run).where(Run.id == run_id))


def _info(row: Run) -> RunInfo:
    config = row.config or {}
    return RunInfo(
        id=row.id,
        name=row.name,
        dataset_path=row.dataset_path,
        dataset_hash=row.dataset_hash,
        dataset_n=row.dataset_n,
        models=config.get("models", []),
        strategies=config.get("strategies", []),
        metrics=config.get("metrics", []),
        judge=config.get("judge"),
        params=config.get("params", {}),
        status=_status(row),
        created_at=_iso(row.created_at),
        finished_at=_iso(row.finished_at),
        owner_pid=row.owner_pid,
        owner_host=row.owner_host,
        heartbeat_at=_iso(row.heartbeat_at),
    )


def _status(row: Run) -> str:
    """The stored status, except that a running run whose owner is gone shows as interrupted."""
    if row.status == "running" and not owner.alive(row.owner_pid, row.owner_host, row.heartbeat_at):
        return "interrupted"
    return row.status


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat(timespec="seconds")
