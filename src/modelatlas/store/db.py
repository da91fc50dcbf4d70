"""Engine, sessions and migrations. Migrations run on first use, under a file lock."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from modelatlas.config import settings
from modelatlas.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest), keeping every row."""
    from alembic import command

    with _migration_lock(engine), engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)


def create(url: str) -> Engine:
    """A new engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the folder for the database {path}: {exc.strerror}.",
                hint="Set MODELATLAS_HOME or MODELATLAS_DATABASE_URL to a writable place.",
            ) from exc
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@cache
def _engine_for(url: str) -> Engine:
    engine = create(url)
    try:
        if current_revision(engine) != head_revision():
            migrate(engine)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"Cannot open or migrate the database at {engine.url.render_as_string()}: {exc.orig or exc}.",
            hint="Check that the file is a modelatlas database and is writable, "
            "or set MODELATLAS_DATABASE_URL.",
        ) from exc
    return engine


def engine() -> Engine:
    """The engine for the configured database, migrated to the newest revision."""
    return _engine_for(settings().database_url)


@contextlib.contextmanager
def session() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    factory = sessionmaker(engine(), expire_on_commit=False)
    with factory() as s, s.begin():
        yield s


def table_names(eng: Engine) -> set[str]:
    return set(inspect(eng).get_table_names())


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


@contextlib.contextmanager
def _migration_lock(eng: Engine) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (servers share a lock-free DB)."""
    db = eng.url.database if eng.dialect.name == "sqlite" else None
    if not db or db == ":memory:":
        yield
        return
    with open(f"{db}.migrate.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
