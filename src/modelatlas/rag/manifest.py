"""The manifest of a knowledge base: its settings and the hash of every indexed file.

It lives at ``<home>/rag/<name>/manifest.json`` and is the commit point of an index run: it is
replaced atomically (write a temporary file, fsync, rename) once the new chunks are stored, and
search only shows the rows of the file versions it lists. A run that fails before that leaves
the previous manifest, and so the previous index, in force.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from modelatlas.config import settings
from modelatlas.errors import RagError, UnknownKnowledgeBaseError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
FILE = "manifest.json"
StoreKind = Literal["lancedb", "qdrant"]


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hash: str  # sha256 of the file's bytes
    chunks: int
    indexed: str  # ISO date of the run that embedded this version


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = 1
    name: str
    store: StoreKind
    url: str | None = None  # a Qdrant server; None: the store's files under the home
    embedder: str
    dimensions: int
    chunk_tokens: int
    overlap: int
    table: str  # the store's table (collection) that holds the rows
    created: str
    updated: str
    files: dict[str, FileEntry] = {}

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files.values())

    def visible(self, source: str, doc_hash: str) -> bool:
        """Whether a stored row belongs to the file version this manifest committed."""
        entry = self.files.get(source)
        return entry is not None and entry.hash == doc_hash


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def rag_home() -> Path:
    return settings().home / "rag"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise RagError(
            f"{name!r} is not a valid knowledge base name.",
            hint="Use letters, digits, '.', '_' and '-' (starting with a letter or digit), e.g. handbook.",
        )
    return name


def kb_dir(name: str) -> Path:
    return rag_home() / check_name(name)


def kb_names() -> list[str]:
    """The knowledge bases that have a committed manifest."""
    root = rag_home()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / FILE).is_file())


def load_manifest(name: str) -> Manifest | None:
    path = kb_dir(name) / FILE
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise RagError(
            f"The manifest of the knowledge base {name!r} ({path}) is unreadable: {str(exc)[:200]}",
            hint=f"Rebuild it: modelatlas rag index PATH --name {name} --rebuild",
        ) from exc


def require_manifest(name: str) -> Manifest:
    manifest = load_manifest(name)
    if manifest is None:
        raise UnknownKnowledgeBaseError(name, kb_names())
    return manifest


def save_manifest(manifest: Manifest) -> None:
    """Replace the manifest atomically: readers see the old one or the new one, never a mix."""
    folder = kb_dir(manifest.name)
    settings().make_dirs(folder)  # a home made here is made private
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(manifest.model_dump_json(indent=2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold the knowledge base's lock file, so two index runs never write it at once (POSIX)."""
    folder = kb_dir(name)
    settings().make_dirs(folder)  # a home made here is made private
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock
        yield
        return
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RagError(
                f"Another index run is writing the knowledge base {name!r}.", hint="Wait for it to finish."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
