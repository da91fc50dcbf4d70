"""The served models: they load on first use; one bounded queue per model.

Loaded models stay loaded until loading another would take more memory than the budget; then
the least recently used ones that no request is using are unloaded first. A model that alone
needs more than the budget still loads, alone, with a warning.

The models themselves come from the process's :class:`~modelatlas.backends.pool.ModelPool`:
this server is one user of each model it has loaded, from its load until it unloads it (or the
server stops), so a model another part of the process holds too is loaded once, and closed when
the last of them lets it go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator

from modelatlas.backends.model import Model
from modelatlas.backends.pool import ModelPool, shared_pool
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import (
    BackendError,
    ContextLengthExceededError,
    InvalidRequestError,
    MissingAPIKeyError,
    ServerBusyError,
    UnknownModelError,
)
from modelatlas.serve.metrics import note_model
from modelatlas.types import GenerationParams, Prompt

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 16
DEFAULT_MAX_TOKENS = 256
BUDGET_SHARE = 0.8  # of the memory available at start, for the default budget
TEXT_MODES = ("chat", "completion")  # records that write text: not embedding models


class ServedModels:
    """The models this server may run, and the ones it has loaded.

    Only the listed models are served (never a path or an id a client makes up), so a
    request cannot make the server open an arbitrary file.
    """

    def __init__(
        self,
        records: list[ModelRecord],
        queue_size: int = DEFAULT_QUEUE_SIZE,
        memory_budget_gb: float | None = None,
        pool: ModelPool | None = None,
    ):
        self.shared = pool or shared_pool()
        self.records = {r.id: r for r in records}
        self.queue_size = max(1, queue_size)
        self.memory_budget_gb = default_budget_gb() if memory_budget_gb is None else memory_budget_gb
        self._loaded: OrderedDict[str, Model] = OrderedDict()  # least recently used first
        self._needs: dict[str, float] = {}
        self._loading = asyncio.Lock()
        self._queues: dict[str, asyncio.Semaphore] = {}
        self._depth: Counter[str] = Counter()

    @classmethod
    def from_ids(
        cls,
        ids: list[str] | None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        memory_budget_gb: float | None = None,
    ) -> ServedModels:
        """The models given (each resolved now, so a typo or a missing provider key fails at
        start), or the runnable ones."""
        from modelatlas.catalog.resolve import resolve, runnable_records

        if ids:
            records = [resolve(i) for i in ids]
            for record in records:
                check_key(record)
        else:
            records = runnable_records()
        return cls(records, queue_size, memory_budget_gb)

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    @property
    def loaded_gb(self) -> float:
        """Estimated memory of the loaded models."""
        return sum(self._needs.values())

    def queue_depth(self, model_id: str) -> int:
        """Requests holding or waiting for one of the model's slots."""
        return self._depth.get(model_id, 0)

    def record(self, model_id: str) -> ModelRecord:
        record = self.records.get(model_id)
        if record is None:
            raise UnknownModelError(model_id, self.records)
        return record

    async def get(self, model_id: str, mode: str | None = None) -> Model:
        """The loaded model (loading it on first use); ``mode`` 'text' refuses embedding models."""
        from modelatlas.backends.declared import facts

        record = self.record(model_id)
        model_facts = facts(record)
        if mode == "text" and model_facts.can("transcription") and not model_facts.can("generate"):
            raise InvalidRequestError(
                f"{model_id} is a speech-recognition model: it transcribes audio, it does not write text.",
                hint="Call /v1/audio/transcriptions with it (the openai SDK's "
                "client.audio.transcriptions.create), or pick a chat or completion model.",
                param="model",
            )
        if mode == "text" and model_facts.can("image_generation") and not model_facts.can("generate"):
            raise InvalidRequestError(
                f"{model_id} is an image-generation model: it makes pictures, it does not write text.",
                hint="Call /v1/images/generations with it (the openai SDK's client.images.generate), "
                "or pick a chat or completion model.",
                param="model",
            )
        if mode == "text" and not model_facts.can("generate"):
            raise InvalidRequestError(
                f"{model_id} is an embedding model: it makes vectors, not text.",
                hint="Call /v1/embeddings with it, or pick a chat or completion model.",
            )
        model = self._loaded.get(model_id)
        if model is None:
            model = await self._load(record)
        if model_id in self._loaded:
            self._loaded.move_to_end(model_id)  # the most recently used now
        return model

    async def _load(self, record: ModelRecord) -> Model:
        async with self._loading:  # one load at a time, so two loads never overshoot the budget
            model = self._loaded.get(record.id)
            if model is not None:
                return model
            need = memory_need(record)
            await self._make_room(record.id, need)
            model = await _open(self.shared, record)
            self._loaded[record.id], self._needs[record.id] = model, need
            return model

    async def _make_room(self, model_id: str, need: float) -> None:
        """Unload idle models, least recently used first, until ``need`` more GB fit the budget."""
        budget = self.memory_budget_gb
        if need > budget:
            log.warning(
                "%s needs about %.2f GB, more than the memory budget of %.2f GB: loading it alone.",
                model_id,
                need,
                budget,
            )
        for other in list(self._loaded):
            if self.loaded_gb + need <= budget:
                return
            idle = self._depth.get(other, 0) == 0  # never unload a model a request is using
            if idle and self._needs.get(other, 0) > 0:  # a hosted model frees nothing here
                await self._unload(other)
        if self.loaded_gb > 0 and self.loaded_gb + need > budget:
            log.warning(
                "Loading %s goes over the memory budget of %.2f GB: %s are in use.",
                model_id,
                budget,
                ", ".join(self._loaded),
            )

    async def _unload(self, model_id: str) -> None:
        model = self._loaded.pop(model_id)
        self._needs.pop(model_id, None)
        log.info("Unloading %s to stay within the memory budget.", model_id)
        await self.shared.release(model)

    @contextlib.asynccontextmanager
    async def slot(self, model_id: str) -> AsyncIterator[None]:
        """A place in the model's queue; a full queue is a 503 with Retry-After."""
        self.record(model_id)  # an unknown id gets no queue
        note_model(model_id)
        queue = self._queues.setdefault(model_id, asyncio.Semaphore(self.queue_size))
        if queue.locked():
            raise ServerBusyError(
                f"{model_id} has {self.queue_size} requests queued already.",
                retry_after=1,
                hint="Retry after the time in the Retry-After header.",
            )
        self._depth[model_id] += 1
        try:
            async with queue:
                yield
        finally:
            self._depth[model_id] -= 1

    async def aclose(self) -> None:
        """Let every loaded model go (each closes unless another user of the pool holds it)."""
        for model in self._loaded.values():
            await self.shared.release(model)
        self._loaded.clear()
        self._needs.clear()


def default_budget_gb() -> float:
    """A share of the memory available now; no limit when that cannot be read."""
    from modelatlas.catalog.memory import available_gb

    available = available_gb()
    return round(available * BUDGET_SHARE, 2) if available > 0 else math.inf


def memory_need(record: ModelRecord) -> float:
    """GB the model takes here once loaded: the record's estimate, or one from the size of the
    weights its backend declares (``memory_bytes``)."""
    from modelatlas.backends.declared import facts
    from modelatlas.catalog.memory import estimate_gb

    declared = facts(record)
    if declared.hosted:  # it runs elsewhere: no memory here
        return 0.0
    if record.memory_gb is not None:
        return record.memory_gb
    size = declared.memory_bytes
    need = estimate_gb(size, record.parameters, context_length=record.context_length) or 0.0
    return need + batch_cache_gb(record)


def batch_cache_gb(record: ModelRecord) -> float:
    """The KV cache of a llama.cpp model's batch context (``parallel`` > 1), from its header."""
    from modelatlas.backends.declared import facts

    declared = facts(record)
    parallel = declared.parallel
    if not declared.batches or parallel <= 1 or not record.location:
        return 0.0
    from modelatlas.backends.gguf_header import kv_bytes_per_token
    from modelatlas.backends.llamacpp_batch import MAX_CELLS

    try:
        per_token = kv_bytes_per_token(record.location)
    except (OSError, ValueError):
        return 0.0
    context = record.context_length or MAX_CELLS
    return (per_token or 0) * min(MAX_CELLS, parallel * context) / 2**30


def check_can(record: ModelRecord, capability: str, does_not: str, kind: str) -> None:
    """Refuse (400, on ``model``) a served model whose backend does not declare ``capability``
    for it: "model ID does not ``does_not``", and the hint asks for ``kind`` model ("an
    image-generation"). The image and transcription routes check their model alike, before a
    queue slot is taken."""
    from modelatlas.backends.declared import facts

    if not facts(record).can(capability):
        raise InvalidRequestError(
            f"model {record.id} does not {does_not}.",
            hint=f"Send {kind} model (GET /v1/models lists what is served), or call "
            "/v1/chat/completions with this one.",
            param="model",
        )


def check_endpoint(record: ModelRecord, endpoint: str, allow_chat_on_base: bool = False) -> None:
    """Refuse (400, on ``model``) a model asked on an endpoint it would answer with junk or
    not at all, naming the endpoint to use: a base model (mode completion) asked to chat (its
    answer continues the rendered turns; ``allow_chat_on_base``, serve's --allow-chat-on-base,
    lets it), a text model asked for embeddings, a chat-only model asked to complete text."""
    from modelatlas.backends.declared import facts

    use = None
    if endpoint == "chat.completions" and record.mode == "completion" and not allow_chat_on_base:
        use = "/v1/completions with a text prompt to continue (or start the server with --allow-chat-on-base)"
        what = "is a base model (mode completion): it continues text and was not tuned to chat"
    elif endpoint == "embeddings" and (record.mode in TEXT_MODES or not facts(record).can("embeddings")):
        use = "/v1/chat/completions" if record.mode != "completion" else "/v1/completions"
        use += " with it, or an embedding model for vectors (GET /v1/models lists what is served)"
        what = f"is not an embedding model (mode {record.mode})"
    elif endpoint == "completions" and record.backend and not _completes_text(record):
        use = "/v1/chat/completions with the prompt as a user message"
        what = "is a chat model whose provider answers chats only"
    if use is not None:
        raise InvalidRequestError(f"{record.id} {what}.", hint=f"Use {use}.", param="model")


def _completes_text(record: ModelRecord) -> bool:
    from modelatlas.backends.registry import get_backend_class

    return get_backend_class(record.backend).completes_text(record)


def check_key(record: ModelRecord) -> None:
    """Fail at start when a hosted model's provider key is not in the environment."""
    from modelatlas.backends.declared import facts

    for variable in facts(record).required_env:
        if not os.environ.get(variable):
            raise MissingAPIKeyError(variable, record.id)


async def _open(pool: ModelPool, record: ModelRecord) -> Model:
    """The pool's model for ``record``, loaded now (an embedding model loads at its first call)."""
    try:
        return await pool.acquire(record, load=record.mode != "embedding")
    except MissingAPIKeyError as exc:  # the server's own setup, not the caller's key: no 401
        raise BackendError(
            f"{record.id} is a hosted model and this server has no key for it: the environment "
            f"variable {exc.variable} is not set where `modelatlas serve` runs.",
            hint=f"Set {exc.variable} and restart the server.",
        ) from None


async def fit_max_tokens(
    model: Model, prompt: Prompt, requested: int | None, params: GenerationParams | None = None
) -> int:
    """max_tokens to send, after checking that the prompt plus the output fit the context.

    The prompt is counted as the model reads it: chat messages through the chat template, with
    the tools ``params`` gives (the backend's count; a count of the bare texts called a short
    chat 1 token, and an overflow error quoted that)."""
    context = await asyncio.to_thread(lambda: model.context_length)
    prompt_tokens = await asyncio.to_thread(model.backend.count_prompt_tokens, prompt, params)
    if context is None:
        return requested or DEFAULT_MAX_TOKENS
    if requested is None:
        if prompt_tokens >= context:
            raise ContextLengthExceededError(model.id, prompt_tokens, 1, context)
        return min(DEFAULT_MAX_TOKENS, context - prompt_tokens)
    if prompt_tokens + requested > context:
        raise ContextLengthExceededError(model.id, prompt_tokens, requested, context)
    return requested
