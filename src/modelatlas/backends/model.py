"""Model: the wrapper every other layer uses to call a backend.

It owns what a backend author should not have to write: retries with backoff (honouring
Retry-After), a concurrency limit, timing (time to first token, tokens per second), usage and
cost, and an optional call log (the CLI writes it to the store).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from modelatlas.backends.base import Backend, TokenLogprobs, collect
from modelatlas.backends.cache import StoreCache, cache_key
from modelatlas.backends.retry import RetryPolicy, with_retries
from modelatlas.errors import ConfigError, InvalidRequestError, ModelAtlasError, TransientError, suggest
from modelatlas.records import ModelRecord
from modelatlas.types import (
    Chunk,
    Completion,
    Embeddings,
    GenerationParams,
    LogLikelihood,
    Message,
    Prompt,
    Timing,
    Usage,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallRecord:
    """What the call log keeps of one call: never the prompt's secrets, only counts and times."""

    model_id: str
    kind: str
    ok: bool
    usage: Usage
    timing: Timing
    error: str | None = None


class Model:
    """A backend with retries, a concurrency limit, timing, usage and cost."""

    def __init__(
        self,
        record: ModelRecord,
        backend: Backend,
        *,
        max_concurrency: int = 4,
        retry: RetryPolicy | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
        cache: StoreCache | None = None,
    ):
        self.record = record
        self.backend = backend
        self.max_concurrency = max(1, max_concurrency)
        self.retry = retry or RetryPolicy()
        self.on_call = on_call
        self.cache = cache
        self._identity: str | None = None
        self._slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._loaded = False

    def __repr__(self) -> str:
        return f"Model({self.id!r}, backend={self.record.backend!r})"

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def context_length(self) -> int | None:
        return self.backend.context_length or self.record.context_length

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def prompt_for(self, text: str, system: str | None = None) -> Prompt:
        """What to send for one user text: messages for a chat model, plain text for a base model."""
        if self.record.mode == "embedding":
            raise ConfigError(
                f"{self.id} is an embedding model: it makes vectors, not text.",
                hint="Pick a chat or completion model; `modelatlas models list` shows the modes.",
            )
        if self.record.mode == "completion":
            return f"{system}\n\n{text}" if system else text
        messages = [Message.system(system)] if system else []
        return [*messages, Message.user(text)]

    async def load(self) -> None:
        """Load the model now (in a worker thread), so the first call's timing is not skewed."""
        if not self._loaded:
            await asyncio.to_thread(self.backend.load)
            self._loaded = True

    async def generate(
        self, prompt: Prompt, params: GenerationParams | None = None, **overrides
    ) -> Completion:
        """The whole answer, with usage, cost and timing filled in (from the cache when enabled)."""
        params = _params(params, overrides)
        if self.cache is not None:
            return await self._cached(prompt, params)
        return await self._generate(prompt, params)

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = self.backend.identity()
        return self._identity

    async def _cached(self, prompt: Prompt, params: GenerationParams) -> Completion:
        key = cache_key(self.identity, prompt, params)
        hit = await asyncio.to_thread(self.cache.get, key)
        if hit is not None:
            return hit.model_copy(update={"cached": True, "model": self.id})
        completion = await self._generate(prompt, params)
        if completion.finish_reason != "error":
            await asyncio.to_thread(self.cache.put, key, self.identity, completion)
        return completion

    async def _generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        if not self.backend.can_stream:
            return await self._generate_whole(prompt, params)
        return await collect(self._stream(prompt, params, kind="generate"), self.id)

    def stream(
        self, prompt: Prompt, params: GenerationParams | None = None, **overrides
    ) -> AsyncIterator[Chunk]:
        """Chunks as they come; the last one carries the finish reason and the priced usage.

        A plain function returning the generator, so bad options fail here, at the call.
        """
        return self._stream(prompt, _params(params, overrides), kind="stream")

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        texts = list(texts)
        await self.load()
        start = time.perf_counter()
        async with self._slot():
            result = await with_retries(lambda: self.backend.embed(texts), self.retry, self._warn)
        result.usage.cost_usd = self._cost(result.usage, time.perf_counter() - start)
        self._log("embed", True, result.usage, Timing(latency_s=time.perf_counter() - start))
        return result

    async def loglikelihood(self, context: str, continuation: str) -> LogLikelihood:
        await self.load()
        async with self._slot():
            return await with_retries(
                lambda: self.backend.loglikelihood(context, continuation), self.retry, self._warn
            )

    async def token_logprobs(
        self, prompt: str | list[int], params: GenerationParams | None, top: int = 0, echo: bool = False
    ) -> TokenLogprobs:
        """A completion with each token's log-probability (see ``Backend.token_logprobs``),
        with the wrapper's retries, concurrency limit, timing, cost and call log."""
        await self.load()
        start = time.perf_counter()
        try:
            async with self._slot():
                result = await with_retries(
                    lambda: self.backend.token_logprobs(prompt, params, top, echo), self.retry, self._warn
                )
        except ModelAtlasError as exc:
            self._log("logprobs", False, Usage(), Timing(latency_s=time.perf_counter() - start), exc)
            raise
        latency = time.perf_counter() - start
        result.usage.cost_usd = self._cost(result.usage, latency)
        self._log("logprobs", True, result.usage, Timing(latency_s=latency))
        return result

    async def aclose(self) -> None:
        await self.backend.aclose()

    # -- internals -------------------------------------------------------------------------

    async def _generate_whole(self, prompt: Prompt, params: GenerationParams) -> Completion:
        await self.load()
        start = time.perf_counter()
        try:
            async with self._slot():
                result = await with_retries(
                    lambda: self.backend.generate(prompt, params), self.retry, self._warn
                )
        except ModelAtlasError as exc:
            self._log("generate", False, Usage(), Timing(latency_s=time.perf_counter() - start), exc)
            raise
        latency = time.perf_counter() - start
        rate = result.usage.output_tokens / latency if latency > 0 else None
        result.timing = Timing(latency_s=latency, tokens_per_s=rate)
        result.usage.cost_usd = self._cost(result.usage, latency)
        result.model = self.id
        self._log("generate", True, result.usage, result.timing)
        return result

    async def _stream(self, prompt: Prompt, params: GenerationParams, kind: str):
        await self.load()
        start = time.perf_counter()
        first: float | None = None
        usage, finish = Usage(), "stop"
        try:
            async with self._slot():
                attempt = 1
                while True:
                    try:
                        async for chunk in self.backend.stream(prompt, params):
                            usage = chunk.usage or usage
                            finish = chunk.finish_reason or finish
                            if chunk.text:
                                first = first or time.perf_counter()
                                yield Chunk(text=chunk.text)
                        break
                    except TransientError as error:
                        # Retry only while nothing has reached the caller.
                        if first is not None or attempt >= self.retry.max_attempts:
                            raise
                        wait = self.retry.delay(attempt, error)
                        self._warn(attempt, error, wait)
                        await asyncio.sleep(wait)
                        attempt += 1
        except (ModelAtlasError, asyncio.CancelledError, GeneratorExit) as exc:
            self._log(kind, False, usage, Timing(latency_s=time.perf_counter() - start), exc)
            raise
        end = time.perf_counter()
        timing = _timing(start, first, end, usage.output_tokens)
        usage.cost_usd = self._cost(usage, end - start)
        self._log(kind, True, usage, timing)
        yield Chunk(finish_reason=finish, usage=usage, timing=timing)

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is None:
            slot = self._slots[loop] = asyncio.Semaphore(self.max_concurrency)
        return slot

    def _cost(self, usage: Usage, seconds: float) -> float:
        price = self.record.price
        return price.cost(usage.input_tokens, usage.output_tokens, seconds) if price else 0.0

    def _warn(self, attempt: int, error: TransientError, wait: float) -> None:
        log.warning("%s: %s; retry %d in %.1fs", self.id, error.message, attempt, wait)

    def _log(self, kind, ok, usage, timing, error: BaseException | None = None) -> None:
        if self.on_call is None:
            return
        message = None if error is None else (getattr(error, "message", None) or type(error).__name__)
        try:
            self.on_call(CallRecord(self.id, kind, ok, usage, timing, message))
        except Exception:  # a broken log must never break a generation
            log.exception("could not log a call of %s", self.id)


def _params(params: GenerationParams | None, overrides: dict) -> GenerationParams:
    """The call's settings, validated like construction-time options.

    ``model_copy(update=...)`` skips validation, so ``max_tokns=2`` or ``temperature=-5`` used to
    reach the backend unnoticed; here they fail before any call, cache look-up or log entry.
    """
    params = params or GenerationParams()
    if not overrides:
        return params
    try:
        return GenerationParams.model_validate({**params.model_dump(), **overrides})
    except ValidationError as exc:
        raise _bad_params(exc) from None


def _bad_params(exc: ValidationError) -> InvalidRequestError:
    known = list(GenerationParams.model_fields)
    problems, close = [], []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "params"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown option {name!r}")
            close += [c for c in suggest(name, known) if c not in close]
        else:
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
    hint = f"Did you mean {' or '.join(map(repr, close))}? " if close else ""
    return InvalidRequestError(
        f"Bad generation options: {'; '.join(problems)}.",
        hint=f"{hint}Allowed options: {', '.join(known)}.",
    )


def _timing(start: float, first: float | None, end: float, output_tokens: int) -> Timing:
    ttft = (first - start) if first is not None else None
    decode = end - (first if first is not None else start)
    # The first token's time is counted in ttft, so the rate covers the tokens after it.
    rate = (output_tokens - 1) / decode if output_tokens > 1 and decode > 0 else None
    return Timing(latency_s=end - start, ttft_s=ttft, tokens_per_s=rate)
