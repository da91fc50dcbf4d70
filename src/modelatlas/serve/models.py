"""The model pool: models load on first use and stay loaded; one bounded queue per model."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from modelatlas.backends.model import Model
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ServerBusyError,
    UnknownModelError,
)
from modelatlas.types import Prompt

DEFAULT_QUEUE_SIZE = 16
DEFAULT_MAX_TOKENS = 256


class ModelPool:
    """The models this server may run, and the ones it has loaded.

    Only the listed models are served (never a path or an id a client makes up), so a
    request cannot make the server open an arbitrary file.
    """

    def __init__(self, records: list[ModelRecord], queue_size: int = DEFAULT_QUEUE_SIZE):
        self.records = {r.id: r for r in records}
        self.queue_size = max(1, queue_size)
        self._loaded: dict[str, Model] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._queues: dict[str, asyncio.Semaphore] = {}

    @classmethod
    def from_ids(cls, ids: list[str] | None, queue_size: int = DEFAULT_QUEUE_SIZE) -> ModelPool:
        """The models given (each resolved now, so a typo fails at start), or the runnable ones."""
        from modelatlas.catalog.resolve import resolve, runnable_records

        records = [resolve(i) for i in ids] if ids else runnable_records()
        return cls(records, queue_size)

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    def record(self, model_id: str) -> ModelRecord:
        record = self.records.get(model_id)
        if record is None:
            raise UnknownModelError(model_id, self.records)
        return record

    async def get(self, model_id: str, mode: str | None = None) -> Model:
        """The loaded model (loading it on first use); ``mode`` 'text' refuses embedding models."""
        record = self.record(model_id)
        if mode == "text" and record.mode == "embedding":
            raise InvalidRequestError(
                f"{model_id} is an embedding model: it makes vectors, not text.",
                hint="Call /v1/embeddings with it, or pick a chat or completion model.",
            )
        model = self._loaded.get(model_id)
        if model is not None:
            return model
        async with self._locks.setdefault(model_id, asyncio.Lock()):
            if model_id not in self._loaded:
                from modelatlas.backends.loader import load_model

                model = await asyncio.to_thread(load_model, record)
                if record.mode != "embedding":
                    await model.load()
                self._loaded[model_id] = model
        return self._loaded[model_id]

    @contextlib.asynccontextmanager
    async def slot(self, model_id: str) -> AsyncIterator[None]:
        """A place in the model's queue; a full queue is a 503 with Retry-After."""
        queue = self._queues.setdefault(model_id, asyncio.Semaphore(self.queue_size))
        if queue.locked():
            raise ServerBusyError(
                f"{model_id} has {self.queue_size} requests queued already.",
                retry_after=1,
                hint="Retry after the time in the Retry-After header.",
            )
        async with queue:
            yield

    async def aclose(self) -> None:
        for model in self._loaded.values():
            await model.aclose()
        self._loaded.clear()


async def fit_max_tokens(model: Model, prompt: Prompt, requested: int | None) -> int:
    """max_tokens to send, after checking that the prompt plus the output fit the context.

    The count covers the prompt's text (the chat template adds a few tokens, which the
    backend checks exactly before it computes anything)."""
    context = await asyncio.to_thread(lambda: model.context_length)
    texts = [prompt] if isinstance(prompt, str) else [m.content for m in prompt]
    prompt_tokens = await asyncio.to_thread(lambda: sum(model.count_tokens(t) for t in texts if t))
    if context is None:
        return requested or DEFAULT_MAX_TOKENS
    if requested is None:
        if prompt_tokens >= context:
            raise ContextLengthExceededError(model.id, prompt_tokens, 1, context)
        return min(DEFAULT_MAX_TOKENS, context - prompt_tokens)
    if prompt_tokens + requested > context:
        raise ContextLengthExceededError(model.id, prompt_tokens, requested, context)
    return requested
