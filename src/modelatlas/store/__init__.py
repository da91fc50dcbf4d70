"""The store: SQLAlchemy 2 on SQLite (WAL) by default, migrated by Alembic on first use."""

from modelatlas.store.calls import log_call, recent_calls
from modelatlas.store.db import create, current_revision, engine, head_revision, migrate, session
from modelatlas.store.registered import add_model, get_registered, list_registered, remove_model
from modelatlas.store.results import record_result, results_for_model

__all__ = [
    "add_model",
    "create",
    "current_revision",
    "engine",
    "get_registered",
    "head_revision",
    "list_registered",
    "log_call",
    "migrate",
    "recent_calls",
    "record_result",
    "remove_model",
    "results_for_model",
    "session",
]
