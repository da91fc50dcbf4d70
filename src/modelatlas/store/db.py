"""Engine, sessions and migrations. Migrations run on first use, under a file lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from modelatlas.config import settings
from modelatlas.errors import ConfigError, StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
DB_MODE = 0o600
# The pip package of each database driver module SQLAlchemy imports for a URL.
DRIVERS = {
    "psycopg": "'psycopg[binary]'",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
}


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
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"The database URL {_redacted(url)!r} cannot be read.",
            hint="Use sqlite:////path/to/modelatlas.db or postgresql+psycopg://user@host/db "
            "in MODELATLAS_DATABASE_URL.",
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _prepare_sqlite_file(Path(parsed.database))
    try:
        engine = create_engine(url)
    except ImportError as exc:
        raise _missing_driver(parsed, exc) from None
    except ArgumentError as exc:  # an unknown dialect or driver name
        raise ConfigError(
            f"The database URL {parsed.render_as_string()!r} names no database modelatlas can use: {exc}.",
            hint="Use sqlite:///PATH or postgresql+psycopg://... in MODELATLAS_DATABASE_URL.",
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _prepare_sqlite_file(path: Path) -> None:
    """Create the database file owner-only (0600) before SQLite does (0644): it holds prompts,
    answers and votes. SQLite gives its -wal and -shm files the database file's mode."""
    try:
        settings().make_dirs(path.parent)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, DB_MODE)
        os.close(fd)
    except FileExistsError:
        pass  # an existing database keeps the mode its owner gave it
    except OSError as exc:
        raise StoreError(
            f"Cannot create the database {path}: {exc.strerror}.",
            hint="Set MODELATLAS_HOME or MODELATLAS_DATABASE_URL to a writable place.",
        ) from exc


def _missing_driver(url: URL, exc: ImportError) -> ConfigError:
    """The pip command for the database driver the URL names."""
    module = (exc.name or url.get_driver_name() or "").split(".")[0]
    package = DRIVERS.get(module, module)
    hint = f"Install it with: pip install {package}"
    if url.get_backend_name() == "postgresql" and module != "psycopg":
        hint += " (or pip install 'psycopg[binary]' and write the URL as postgresql+psycopg://...)"
    return ConfigError(
        f"The database URL {url.render_as_string()!r} needs the Python package {module!r}, "
        "which is not installed.",
        hint=hint + ".",
    )


def _redacted(url: str) -> str:
    """``url`` without a password (user:secret@ becomes user:***@)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


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
    fd = os.open(f"{db}.migrate.lock", os.O_CREAT | os.O_WRONLY, DB_MODE)
    with os.fdopen(fd, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
