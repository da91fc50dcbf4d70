"""ModelPool: one refcounted pool of the models this process has open.

Serve, the studio's playground and arena, the eval runner and the RAG embedders ask the pool
instead of opening models themselves, so one model asked for by two of them is opened and
loaded once (a llama.cpp model's weights, a sentence-transformers model, an HTTP client), and
closed when its last user releases it: ``async with pool.using(record) as model: ...``.

A user that asks for ``warm`` keeps the model loaded when it goes idle: the RAG embedders, which
every search and index run needs again (measured on this 2-core machine under load: loading
all-MiniLM-L6-v2, torch import included, took 73 s cold; embedding a query 30 ms; a warm
acquire and release 82 us). ``trim`` closes the idle warm ones; ``aclose`` closes everything.

Two users share a Model only when they ask for the same record with the same wrapper settings
(concurrency, call log, cache, retries): a shared Model shares its concurrency slots and its
call log, so a different setting must get a Model of its own.

Safe from several threads and event loops (a sync caller may run one in a worker thread): the
pool's state is behind a thread lock, opening happens in a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from modelatlas.backends.cache import StoreCache
from modelatlas.backends.model import CallRecord, Model
from modelatlas.backends.registry import get_backend_class
from modelatlas.backends.retry import RetryPolicy
from modelatlas.errors import ConfigError
from modelatlas.records import ModelRecord

__all__ = ["ModelPool", "ModelSettings", "open_model", "shared_pool"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSettings:
    """How a user wants its Model wrapped (see :func:`open_model`); part of the pool's key."""

    max_concurrency: int | None = None
    log_calls: bool = False
    cache: bool = False
    retry: RetryPolicy | None = None


Opener = Callable[[ModelRecord, ModelSettings], Model]


def open_model(record: ModelRecord, settings: ModelSettings | None = None) -> Model:
    """A new Model for ``record``: its backend built (not loaded yet), wrapped with ``settings``.

    ``log_calls`` writes one row per call to the store's call log; ``cache`` reuses answers from
    the store's response cache."""
    from modelatlas.config import settings as config

    settings = settings or ModelSettings()
    if not record.backend:
        raise ConfigError(
            f"modelatlas does not know how to run {record.id}: no backend serves it.",
            hint="Add it with a backend: `modelatlas models add ID --base-url URL` for an "
            "OpenAI-compatible API, or `--path FILE` for a model file.",
        )
    cls = get_backend_class(record.backend)
    backend = cls(record.id, record.location, cls.parse_options(record.options))
    conf = config()
    on_call: Callable[[CallRecord], None] | None = None
    if settings.log_calls:
        from modelatlas.store import log_call  # the store (SQLAlchemy) only when calls are logged

        on_call = log_call
    return Model(
        record,
        backend,
        max_concurrency=settings.max_concurrency or conf.max_concurrency,
        retry=settings.retry or RetryPolicy(max_attempts=conf.max_retries + 1),
        on_call=on_call,
        cache=StoreCache() if settings.cache else None,
    )


@dataclass
class _Entry:
    key: tuple[str, ModelSettings]
    model: Model
    users: int = 0
    warm: bool = False


class ModelPool:
    """The open models, one per (record, settings), each closed when its last user leaves."""

    def __init__(self, opener: Opener = open_model):
        self._opener = opener
        self._entries: dict[tuple[str, ModelSettings], _Entry] = {}
        self._by_model: dict[int, _Entry] = {}  # id(model): the entry that holds it
        self._lock = threading.Lock()  # held for dictionary updates only, never while opening
        self._opening = threading.Lock()  # one open at a time: two users of one model open it once

    def __repr__(self) -> str:
        return f"ModelPool({len(self._entries)} open)"

    async def acquire(
        self,
        record: ModelRecord,
        settings: ModelSettings | None = None,
        *,
        load: bool = False,
        warm: bool = False,
    ) -> Model:
        """The pool's Model for ``record`` (opened on first use), counted as one more user until
        :meth:`release`. ``load`` loads it now rather than at its first call (so a load error
        comes here, and the first call's timing is the call's); ``warm`` keeps it loaded when idle."""
        key = (record.model_dump_json(), settings or ModelSettings())
        entry = await asyncio.to_thread(self._enter, key, record, warm)
        if load:
            try:
                await entry.model.load()
            except BaseException:
                await self.release(entry.model)
                raise
        return entry.model

    async def release(self, model: Model) -> None:
        """One user less; the last one closes the model (unless a user asked to keep it warm)."""
        with self._lock:
            entry = self._by_model.get(id(model))
            if entry is None or entry.model is not model:
                return  # not the pool's (or closed by aclose already)
            entry.users = max(0, entry.users - 1)
            closing = entry.users == 0 and not entry.warm
            if closing:
                self._forget(entry)
        if closing:
            await _close(model)

    @contextlib.asynccontextmanager
    async def using(
        self,
        record: ModelRecord,
        settings: ModelSettings | None = None,
        *,
        load: bool = False,
        warm: bool = False,
    ) -> AsyncIterator[Model]:
        """``acquire`` for the block, ``release`` after it (also when it fails)."""
        model = await self.acquire(record, settings, load=load, warm=warm)
        try:
            yield model
        finally:
            await self.release(model)

    def users(self, model: Model) -> int:
        """How many users hold ``model`` now (0 for a model the pool does not hold)."""
        with self._lock:
            entry = self._by_model.get(id(model))
            return entry.users if entry is not None and entry.model is model else 0

    @property
    def models(self) -> list[Model]:
        """Every open model, in the order they were opened."""
        with self._lock:
            return [entry.model for entry in self._entries.values()]

    async def trim(self) -> None:
        """Close the warm models no user holds now."""
        with self._lock:
            idle = [entry for entry in self._entries.values() if entry.users == 0]
            for entry in idle:
                self._forget(entry)
        for entry in idle:
            await _close(entry.model)

    async def aclose(self) -> None:
        """Close every model, held or not (the process is ending); the pool stays usable."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._by_model.clear()
        for entry in entries:
            await _close(entry.model)

    def _enter(self, key: tuple[str, ModelSettings], record: ModelRecord, warm: bool) -> _Entry:
        """The entry for ``key``, opened here if needed, with one more user (in a worker thread)."""
        with self._opening:
            with self._lock:
                entry = self._entries.get(key)
            if entry is None:
                model = self._opener(record, key[1])
                entry = _Entry(key, model)
            with self._lock:
                self._entries[key] = entry
                self._by_model[id(entry.model)] = entry
                entry.users += 1
                entry.warm = entry.warm or warm
            return entry

    def _forget(self, entry: _Entry) -> None:
        """Drop ``entry`` from the pool (the caller holds the lock and closes the model after)."""
        self._entries.pop(entry.key, None)
        self._by_model.pop(id(entry.model), None)


async def _close(model: Model) -> None:
    try:
        await model.aclose()
    except Exception:  # one model that fails to close must not keep the others open
        log.exception("could not close %s", model.id)


_shared: ModelPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ModelPool:
    """This process's pool, which serve, the studio, the eval runner and RAG share."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ModelPool()
        return _shared
