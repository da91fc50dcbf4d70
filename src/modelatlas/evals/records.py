"""Runs in the store: created, written item by item as they finish, read back for reports."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, select

from modelatlas.errors import ConfigError, suggest
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
    with session() as s:
        s.add(
            RunItem(
                run_id=result.run_id,
                model_id=result.model,
                strategy=result.strategy,
                item_id=result.item_id,
                item_index=result.index,
                output=result.output.model_dump(mode="json"),
                scores=scores,
            )
        )


def load_items(run_id: str) -> list[ItemResult]:
    with session() as s:
        rows = s.scalars(select(RunItem).where(RunItem.run_id == run_id).order_by(RunItem.id)).all()
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


def done_keys(run_id: str) -> set[tuple[str, str, str]]:
    """(model, strategy, item id) of every item already answered in the run."""
    with session() as s:
        rows = s.execute(
            select(RunItem.model_id, RunItem.strategy, RunItem.item_id).where(RunItem.run_id == run_id)
        )
        return {tuple(r) for r in rows}


def save_pair(pair: PairResult) -> None:
    with session() as s:
        s.add(
            RunPair(
                run_id=pair.run_id,
                metric=pair.metric,
                a=pair.a,
                b=pair.b,
                item_id=pair.item_id,
                score=pair.score.model_dump(mode="json"),
            )
        )


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
        status=row.status,
        created_at=_iso(row.created_at),
        finished_at=_iso(row.finished_at),
    )


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat(timespec="seconds")
