"""Arena votes by kind (issue 14): image battles are stored apart from text ones, an older database
keeps its votes as text battles when migration 0011 adds the column, and the studio fits each kind's
leaderboard on its own votes only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from modelatlas.evals.bradley_terry import leaderboard as fit
from modelatlas.store import db
from modelatlas.store.votes import add_vote, list_votes
from modelatlas.studio.arena import leaderboard


def test_votes_of_each_kind_are_listed_and_ranked_apart():
    add_vote("hi", "m/a", "m/b", "a")
    add_vote("a cat", "img/x", "img/y", "b", kind="image", answer_a='{"images": []}')
    add_vote("a dog", "img/x", "img/y", "tie", kind="image")
    assert [v.kind for v in list_votes()] == ["text", "image", "image"]
    assert [v.prompt for v in list_votes(kind="image")] == ["a cat", "a dog"]
    assert [v.prompt for v in list_votes(kind="image", limit=1)] == ["a dog"]
    images = leaderboard("image")
    assert [r["model"] for r in images] == ["img/y", "img/x"]
    assert images[0]["rating"] == pytest.approx(
        fit([("img/x", "img/y", "b"), ("img/x", "img/y", "tie")])[0].rating
    )
    assert [r["model"] for r in leaderboard()] == ["m/a", "m/b"]  # text: the image votes left out
    with pytest.raises(ValueError, match="kind is one of text, image, not 'video'"):
        add_vote("hi", "m/a", "m/b", "a", kind="video")


def test_migration_0011_keeps_older_votes_as_text_battles(tmp_path):
    engine = db.create(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate(engine, "0010")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO arena_votes (prompt, model_a, model_b, answer_a, answer_b, winner, created_at) "
                "VALUES ('hi', 'm/a', 'm/b', '', '', 'a', :t)"
            ),
            {"t": datetime.now(UTC)},
        )
    db.migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM arena_votes")).scalars().all() == ["text"]
    from alembic import command

    with engine.begin() as conn:  # and back: the column goes
        command.downgrade(db._alembic_config(conn), "0010")
    with engine.connect() as conn:
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(arena_votes)"))}
    assert "kind" not in columns and "winner" in columns
