"""The store: SQLAlchemy 2 on SQLite (WAL) by default, migrated by Alembic on first use."""

from modelatlas.store.calls import log_call, recent_calls
from modelatlas.store.db import create, current_revision, engine, head_revision, migrate, session
from modelatlas.store.jobs import create_job, get_job, list_jobs, update_job
from modelatlas.store.keys import create_key, get_key, list_keys, revoke_key, verify_secret
from modelatlas.store.registered import add_model, get_registered, list_registered, remove_model
from modelatlas.store.results import record_result, results_for_model
from modelatlas.store.usage import key_totals, record_usage, usage_records, usage_totals
from modelatlas.store.votes import add_vote, list_votes

__all__ = [
    "add_model",
    "add_vote",
    "create",
    "create_job",
    "create_key",
    "current_revision",
    "engine",
    "get_job",
    "get_key",
    "get_registered",
    "head_revision",
    "key_totals",
    "list_jobs",
    "list_keys",
    "list_registered",
    "list_votes",
    "log_call",
    "migrate",
    "recent_calls",
    "record_result",
    "record_usage",
    "remove_model",
    "results_for_model",
    "revoke_key",
    "session",
    "update_job",
    "usage_records",
    "usage_totals",
    "verify_secret",
]
