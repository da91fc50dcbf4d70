"""Model: the wrapper every other layer uses to call a backend.

It owns what a backend author should not have to write: retries with backoff (honouring
Retry-After), a concurrency limit, timing (time to first token, tokens per second), usage and
cost, and an optional call log (the CLI writes it to the store). Every call kind goes through
one instrumented path (:meth:`Model._instrumented`), so these can no longer drift apart: before,
``loglikelihood`` was neither timed nor logged and a failed ``embed`` was not logged at all.

A Model is an async context manager: ``async with model:`` loads it on enter and closes it on
exit. Shared models come from :class:`modelatlas.backends.pool.ModelPool`, which closes a
model when its last user releases it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

from modelatlas.backends.base import Backend, Progress, TokenLogprobs, collect
from modelatlas.backends.cache import StoreCache, cache_key, image_key, transcript_key
from modelatlas.backends.call_params import _image_params, _params, _transcribe_params
from modelatlas.backends.call_params import as_audio as as_audio
from modelatlas.backends.messages import check_parts, reads_files
from modelatlas.backends.retry import RetryPolicy
from modelatlas.errors import ConfigError, InvalidRequestError, ModelAtlasError, TransientError
from modelatlas.images import ImageParams, Images
from modelatlas.parts import AudioPart
from modelatlas.records import ModelRecord
from modelatlas.transcripts import TranscribeParams, Transcript
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

R = TypeVar("R")
T = TypeVar("T")
Clock = Literal["stream", "rate", "latency"]


@dataclass(frozen=True)
class CallRecord:
    """What the call log keeps of one call: never the prompt's secrets, only counts and times."""

    model_id: str
    kind: str
    ok: bool
    usage: Usage
    timing: Timing
    error: str | None = None


@dataclass
class _Call:
    """One call as the wrapper measures it, filled in while it runs.

    ``clock`` says which timing the kind reports: a stream's time to first token and decode
    rate, a whole answer's tokens per second, or the latency alone (embeddings, scores)."""

    kind: str
    clock: Clock = "latency"
    start: float = 0.0
    first: float | None = None  # when text first reached the caller: no retry after that
    usage: Usage = field(default_factory=Usage)
    finish: str = "stop"
    timing: Timing = field(default_factory=Timing)

    def measure(self, end: float) -> Timing:
        latency = end - self.start
        if self.clock == "stream":
            return _timing(self.start, self.first, end, self.usage.output_tokens)
        if self.clock == "rate":
            rate = self.usage.output_tokens / latency if latency > 0 else None
            return Timing(latency_s=latency, tokens_per_s=rate)
        return Timing(latency_s=latency)


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
        self._accepts: frozenset[str] | None = None
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._loaded = False
        self._closed = False
        self._load_lock = threading.Lock()

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

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether the backend is loaded now: a call would not wait for a load (the studio says
        how long a request spent loading its model)."""
        return self._loaded

    async def load(self) -> None:
        """Load the model now (in a worker thread), so the first call's timing is not skewed."""
        if not self._loaded:
            await asyncio.to_thread(self._load_once)

    def _load_once(self) -> None:
        # Two first calls at once (from one event loop or two) load the backend once.
        with self._load_lock:
            if not self._loaded:
                self.backend.load()
                self._loaded, self._closed = True, False

    async def aclose(self) -> None:
        """Release the backend's weights and clients. A second close does nothing; a call after
        a close loads the model again."""
        if self._closed:
            return
        self._closed, self._loaded = True, False
        await self.backend.aclose()

    async def __aenter__(self) -> Model:
        await self.load()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- calls -----------------------------------------------------------------------------

    async def generate(
        self, prompt: Prompt, params: GenerationParams | None = None, **overrides: Any
    ) -> Completion:
        """The whole answer, with usage, cost and timing filled in (from the cache when enabled)."""
        params = _params(params, overrides)
        self.check_prompt(prompt)
        self.backend.check_params(params)
        if self.cache is not None:
            return await self._cached(self.cache, prompt, params)
        return await self._generate(prompt, params)

    def check_prompt(self, prompt: Prompt) -> None:
        """Refuse a message part the backend does not take (an image for a text-only model),
        before any cache look-up, log entry or backend call; the error names what it accepts."""
        if self._accepts is None:
            self._accepts = self.backend.facts(self.record).accepts  # the record's, not the class's
        check_parts(self.id, self._accepts, prompt)

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = self.backend.identity()
        return self._identity

    def stream(
        self, prompt: Prompt, params: GenerationParams | None = None, **overrides: Any
    ) -> AsyncIterator[Chunk]:
        """Chunks as they come; the last one carries the finish reason and the priced usage.

        A plain function returning the generator, so bad options fail here, at the call.
        """
        params = _params(params, overrides)
        self.check_prompt(prompt)
        self.backend.check_params(params)
        return self._stream(prompt, params, kind="stream")

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        texts = list(texts)
        result, _ = await self._whole("embed", lambda: self.backend.embed(texts), lambda r: r.usage)
        return result

    async def embed_input(
        self,
        inputs: Sequence[str] | Sequence[Sequence[int]],
        dimensions: int | None = None,
        truncate: bool = False,
    ) -> Embeddings:
        """Texts or token ids, shortened to ``dimensions``; input longer than the model's window
        refused unless ``truncate`` (``embed`` lets the backend cut it, as RAG wants)."""
        call = lambda: self.backend.embed_input(inputs, dimensions, truncate)  # noqa: E731
        result, _ = await self._whole("embed", call, lambda r: r.usage)
        return result

    async def loglikelihood(self, context: str, continuation: str) -> LogLikelihood:
        """The log-probability of ``continuation`` after ``context``, timed and logged (the call
        log counts no tokens for it: the backend reports none)."""
        result, _ = await self._whole(
            "loglikelihood", lambda: self.backend.loglikelihood(context, continuation), lambda r: Usage()
        )
        return result

    async def token_logprobs(
        self, prompt: str | list[int], params: GenerationParams | None, top: int = 0, echo: bool = False
    ) -> TokenLogprobs:
        """A completion with each token's log-probability (see ``Backend.token_logprobs``),
        with the wrapper's retries, concurrency limit, timing, cost and call log."""
        result, _ = await self._whole(
            "logprobs", lambda: self.backend.token_logprobs(prompt, params, top, echo), lambda r: r.usage
        )
        return result

    async def transcribe(
        self,
        audio: AudioPart | str | Path | bytes,
        params: TranscribeParams | None = None,
        **overrides: Any,
    ) -> Transcript:
        """Speech to text (a path, WAV/MP3/... bytes or an audio part), with the wrapper's
        retries, concurrency limit, timing, cost by the audio's minutes, call log and response
        cache. The transcript's timing is the whole call's; ``real_time_factor`` follows."""
        if not self.backend.facts(self.record).can("transcription"):  # the record's, not the class's
            raise ConfigError(
                f"{self.id} does not transcribe speech.",
                hint="Pick a speech-recognition model, for example local/whisper-base "
                "(`modelatlas catalog search --task speech-recognition`).",
            )
        part, params = as_audio(audio), _transcribe_params(params, overrides)
        key = None
        if self.cache is not None:
            key = await asyncio.to_thread(transcript_key, self.identity, part, params)
            hit = await asyncio.to_thread(self.cache.get_as, key, Transcript)
            if hit is not None:
                return hit.model_copy(update={"cached": True, "model": self.id})
        result, timing = await self._whole(
            "transcribe", lambda: self.backend.transcribe(part, params), lambda r: r.usage
        )
        result = result.model_copy(update={"timing": timing, "model": self.id})
        if key is not None and self.cache is not None:
            await asyncio.to_thread(self.cache.put, key, self.identity, result)
        return result

    async def generate_image(
        self,
        prompt: str,
        params: ImageParams | None = None,
        progress: Progress | None = None,
        **overrides: Any,
    ) -> Images:
        """Text to image, with the wrapper's retries, concurrency limit, timing, cost by the
        image, call log (kind "image") and response cache (keyed by prompt and every parameter,
        the seed included). ``progress(done, total)`` reports denoising steps from a worker
        thread; a cached answer reports none."""
        if not self.backend.facts(self.record).can("image_generation"):
            raise ConfigError(
                f"{self.id} does not make images.",
                hint="Pick an image-generation model (`modelatlas catalog search --task image-generation`).",
            )
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequestError("An image prompt must be non-empty text.", param="prompt")
        params = _image_params(params, overrides)
        key = image_key(self.identity, prompt, params) if self.cache is not None else None
        if key is not None and self.cache is not None:
            hit = await asyncio.to_thread(self.cache.get_as, key, Images)
            if hit is not None:
                return hit.model_copy(update={"cached": True, "model": self.id})
        result, timing = await self._whole(
            "image", lambda: self.backend.generate_image(prompt, params, progress), lambda r: r.usage
        )
        result = result.model_copy(update={"timing": timing, "model": self.id, "prompt": prompt})
        if key is not None and self.cache is not None:
            await asyncio.to_thread(self.cache.put, key, self.identity, result)
        return result

    # -- internals -------------------------------------------------------------------------

    async def _cached(self, cache: StoreCache, prompt: Prompt, params: GenerationParams) -> Completion:
        if reads_files(prompt):  # the key covers a path part's bytes: read them off the loop
            key = await asyncio.to_thread(cache_key, self.identity, prompt, params)
        else:
            key = cache_key(self.identity, prompt, params)
        hit = await asyncio.to_thread(cache.get, key)
        if hit is not None:
            return hit.model_copy(update={"cached": True, "model": self.id})
        completion = await self._generate(prompt, params)
        if completion.finish_reason != "error":
            await asyncio.to_thread(cache.put, key, self.identity, completion)
        return completion

    async def _generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        if not self.backend.can_stream:
            return await self._generate_whole(prompt, params)
        return await collect(self._stream(prompt, params, kind="generate"), self.id)

    async def _generate_whole(self, prompt: Prompt, params: GenerationParams) -> Completion:
        result, timing = await self._whole(
            "generate", lambda: self.backend.generate(prompt, params), lambda r: r.usage, clock="rate"
        )
        result.timing = timing
        result.model = self.id
        return result

    async def _stream(self, prompt: Prompt, params: GenerationParams, kind: str) -> AsyncIterator[Chunk]:
        call = _Call(kind, clock="stream")

        async def attempt() -> AsyncIterator[Chunk]:
            async with _closing(self.backend.stream(prompt, params)) as chunks:
                async for chunk in chunks:
                    call.usage = chunk.usage or call.usage
                    call.finish = chunk.finish_reason or call.finish
                    if chunk.text or chunk.tool_calls:
                        call.first = call.first or time.perf_counter()
                    if chunk.text or chunk.tool_calls or chunk.logprobs:  # the end comes last, below
                        yield Chunk(text=chunk.text, tool_calls=chunk.tool_calls, logprobs=chunk.logprobs)

        async with _closing(self._instrumented(call, attempt)) as chunks:
            async for chunk in chunks:
                yield chunk
        yield Chunk(finish_reason=call.finish, usage=call.usage, timing=call.timing)

    async def _whole(
        self,
        kind: str,
        run: Callable[[], Awaitable[R]],
        usage: Callable[[R], Usage],
        clock: Clock = "latency",
    ) -> tuple[R, Timing]:
        """A call that answers at once, through the instrumented path: its result and timing."""
        call = _Call(kind, clock=clock)

        async def attempt() -> AsyncIterator[R]:
            result = await run()
            call.usage = usage(result)
            yield result

        results = [result async for result in self._instrumented(call, attempt)]
        return results[0], call.timing

    async def _instrumented(self, call: _Call, attempt: Callable[[], AsyncIterator[R]]) -> AsyncIterator[R]:
        """The one path of every call: load, a concurrency slot, retries of transient errors while
        nothing has reached the caller, then timing, cost and the call log (a failure is logged
        with what it used). ``attempt`` makes one try's results and records them in ``call``."""
        await self.load()
        call.start = time.perf_counter()
        try:
            async with self._slot():
                tries = 1
                while True:
                    try:
                        async with _closing(attempt()) as results:
                            async for result in results:
                                yield result
                        break
                    except TransientError as error:
                        # Retry only while nothing has reached the caller.
                        if call.first is not None or tries >= self.retry.max_attempts:
                            raise
                        wait = self.retry.delay(tries, error)
                        self._warn(tries, error, wait)
                        await asyncio.sleep(wait)
                        tries += 1
        except (ModelAtlasError, asyncio.CancelledError, GeneratorExit) as exc:
            self._log(call.kind, False, call.usage, Timing(latency_s=time.perf_counter() - call.start), exc)
            raise
        end = time.perf_counter()
        call.timing = call.measure(end)
        call.usage.cost_usd = self._cost(call.usage, end - call.start)
        self._log(call.kind, True, call.usage, call.timing)

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is None:
            slot = self._slots[loop] = asyncio.Semaphore(self.max_concurrency)
        return slot

    def _cost(self, usage: Usage, seconds: float) -> float:
        price = self.record.price
        if price is None:
            return 0.0
        return price.cost(usage.input_tokens, usage.output_tokens, seconds, usage.audio_seconds, usage.images)

    def _warn(self, attempt: int, error: TransientError, wait: float) -> None:
        log.warning("%s: %s; retry %d in %.1fs", self.id, error.message, attempt, wait)

    def _log(
        self, kind: str, ok: bool, usage: Usage, timing: Timing, error: BaseException | None = None
    ) -> None:
        if self.on_call is None:
            return
        message = None if error is None else (getattr(error, "message", None) or type(error).__name__)
        try:
            self.on_call(CallRecord(self.id, kind, ok, usage, timing, message))
        except Exception:  # a broken log must never break a generation
            log.exception("could not log a call of %s", self.id)


@contextlib.asynccontextmanager
async def _closing(items: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """``items``, closed when the block ends: a stream its caller leaves stops now (its slot
    freed, its generation cancelled, its failure logged), not when the garbage collector
    finalises the generator."""
    try:
        yield items
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


def _timing(start: float, first: float | None, end: float, output_tokens: int) -> Timing:
    ttft = (first - start) if first is not None else None
    decode = end - (first if first is not None else start)
    # The first token's time is counted in ttft, so the rate covers the tokens after it.
    rate = (output_tokens - 1) / decode if output_tokens > 1 and decode > 0 else None
    return Timing(latency_s=end - start, ttft_s=ttft, tokens_per_s=rate)
