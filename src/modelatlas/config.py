"""Settings, read from the environment each time they are asked for.

``MODELATLAS_HOME`` (default ``~/.modelatlas``) holds everything a user creates: the SQLite
database, caches, vector indexes and adapters. ``MODELATLAS_DATABASE_URL`` overrides the
database (default: SQLite in the home folder). ``MODELATLAS_MODEL_PATHS`` lists extra folders
with model files, separated by the OS path separator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from modelatlas.errors import ConfigError

HOME_MODE = 0o700  # owner only: umask cannot widen a mode given to mkdir


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    model_paths: tuple[Path, ...] = field(default=())
    max_concurrency: int = 4
    max_retries: int = 4

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def ensure_home(self) -> Path:
        """The home folder, created private (0700) if it is missing: it holds prompts, answers
        and votes. A home that exists keeps the mode its owner gave it."""
        try:
            self.home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the modelatlas home folder {self.home}: {exc.strerror}.",
                hint="Set MODELATLAS_HOME to a writable folder.",
            ) from exc
        return self.home

    def make_dirs(self, folder: Path) -> Path:
        """Create ``folder`` and its parents; when it lies in the home, the home is made first,
        so that it is private even when a subfolder is the first thing written there. Raises
        OSError, as ``Path.mkdir`` does."""
        folder = Path(folder)
        if folder == self.home or self.home in folder.parents:
            self.home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def settings() -> Settings:
    """The current settings. Cheap; read anew so tests can point the home at a temp folder."""
    home = Path(os.environ.get("MODELATLAS_HOME") or Path.home() / ".modelatlas").expanduser()
    url = os.environ.get("MODELATLAS_DATABASE_URL") or f"sqlite:///{home / 'modelatlas.db'}"
    paths = tuple(
        Path(p).expanduser()
        for p in os.environ.get("MODELATLAS_MODEL_PATHS", "").split(os.pathsep)
        if p.strip()
    )
    return Settings(
        home=home,
        database_url=url,
        model_paths=paths,
        max_concurrency=_int_env("MODELATLAS_MAX_CONCURRENCY", 4),
        max_retries=_int_env("MODELATLAS_MAX_RETRIES", 4),
    )


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a whole number.", hint=f"Set {name} to a number like {default}."
        ) from None
    if value < 0:
        raise ConfigError(f"{name}={value} is negative.", hint=f"Set {name} to 0 or more.")
    return value
