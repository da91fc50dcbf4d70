"""Arena votes: one row per blind comparison in the studio (the prompt, both answers, the verdict).

A vote's ``kind`` says what was compared: "text" (answers to a prompt) or "image" (pictures made
from a prompt). Leaderboards are fitted per kind, never across them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from modelatlas.store.db import session
from modelatlas.store.schema import ArenaVote, utcnow

WINNERS = ("a", "b", "tie", "both_bad")
KINDS = ("text", "image")


@dataclass(frozen=True)
class Vote:
    id: int
    prompt: str
    model_a: str
    model_b: str
    answer_a: str
    answer_b: str
    winner: str
    created_at: datetime
    kind: str = "text"


def add_vote(
    prompt: str,
    model_a: str,
    model_b: str,
    winner: str,
    *,
    answer_a: str = "",
    answer_b: str = "",
    kind: str = "text",
) -> Vote:
    """Store one vote; ``winner`` is "a", "b", "tie" or "both_bad", ``kind`` "text" or "image"."""
    if kind not in KINDS:
        raise ValueError(f"A vote's kind is one of {', '.join(KINDS)}, not {kind!r}.")
    if winner not in WINNERS:
        raise ValueError(f"A vote's winner is one of {', '.join(WINNERS)}, not {winner!r}.")
    if model_a == model_b:
        raise ValueError(f"An arena vote compares two different models, not {model_a} with itself.")
    with session() as s:
        row = ArenaVote(
            prompt=prompt,
            model_a=model_a,
            model_b=model_b,
            answer_a=answer_a,
            answer_b=answer_b,
            winner=winner,
            kind=kind,
            created_at=utcnow(),
        )
        s.add(row)
        s.flush()
        return _vote(row)


def list_votes(limit: int | None = None, kind: str | None = None) -> list[Vote]:
    """Votes, oldest first (the newest ``limit`` when given); only those of ``kind`` when given."""
    query = select(ArenaVote).order_by(ArenaVote.id.desc())
    if kind is not None:
        query = query.where(ArenaVote.kind == kind)
    if limit is not None:
        query = query.limit(limit)
    with session() as s:
        return [_vote(row) for row in reversed(s.scalars(query).all())]


def _vote(row: ArenaVote) -> Vote:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return Vote(
        id=row.id,
        prompt=row.prompt,
        model_a=row.model_a,
        model_b=row.model_b,
        answer_a=row.answer_a,
        answer_b=row.answer_b,
        winner=row.winner,
        created_at=created,
        kind=row.kind,
    )
