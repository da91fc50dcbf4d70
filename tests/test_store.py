"""The store: SQLite in WAL mode, Alembic migrations on first use, upgrades without loss."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from modelatlas import store
from modelatlas.errors import StoreError
from modelatlas.store import db


def test_first_use_creates_a_migrated_wal_database(home):
    store.add_model("my/model", {"id": "my/model", "backend": "echo"})
    path = home / "modelatlas.db"
    assert path.exists()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == store.head_revision()
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"registered_models", "calls", "alembic_version"} <= tables
    assert store.get_registered("my/model") == {"id": "my/model", "backend": "echo"}


def test_migrates_from_empty_database_file(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    engine = db.create(f"sqlite:///{path}")
    assert db.current_revision(engine) is None
    db.migrate(engine)
    assert db.current_revision(engine) == db.head_revision()


def test_upgrade_from_previous_revision_keeps_rows(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    engine = db.create(f"sqlite:///{path}")
    db.migrate(engine, "0001")
    assert db.table_names(engine) == {"alembic_version", "registered_models"}
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO registered_models (id, record, source, added_at) VALUES (:i, :r, 'user', :t)"),
            {
                "i": "ollama/llama3.2",
                "r": json.dumps({"id": "ollama/llama3.2", "backend": "openai"}),
                "t": datetime.now(UTC),
            },
        )
    engine.dispose()
    # Opening it through the normal path upgrades it on first use.
    monkeypatch.setenv("MODELATLAS_DATABASE_URL", f"sqlite:///{path}")
    assert store.get_registered("ollama/llama3.2") == {"id": "ollama/llama3.2", "backend": "openai"}
    assert db.current_revision(db.create(f"sqlite:///{path}")) == db.head_revision()
    assert "calls" in db.table_names(db.create(f"sqlite:///{path}"))


def test_registered_models_round_trip():
    store.add_model("a/one", {"id": "a/one", "backend": "echo"})
    store.add_model("a/one", {"id": "a/one", "backend": "echo", "mode": "completion"})
    store.add_model("b/two", {"id": "b/two", "backend": "echo"})
    assert list(store.list_registered()) == ["a/one", "b/two"]
    assert store.list_registered()["a/one"]["mode"] == "completion"
    assert store.remove_model("a/one") is True
    assert store.remove_model("a/one") is False
    assert list(store.list_registered()) == ["b/two"]


def test_unusable_database_gives_a_clear_error(tmp_path, monkeypatch):
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    monkeypatch.setenv("MODELATLAS_DATABASE_URL", f"sqlite:///{bad}")
    with pytest.raises(StoreError) as info:
        store.list_registered()
    assert "MODELATLAS_DATABASE_URL" in str(info.value)
