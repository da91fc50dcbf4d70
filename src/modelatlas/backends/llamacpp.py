"""GGUF models through llama-cpp-python, in this process.

Chat uses the file's own chat template; a plain string is completed as is. Every caller of
the same file shares one loaded engine; the engine's lock keeps concurrent async callers from
interleaving, and the blocking work runs in worker threads so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

from pydantic import Field

from modelatlas.backends.base import Backend, BackendOptions, as_messages
from modelatlas.backends.llamacpp_engine import Engine, Sampling, get_engine
from modelatlas.errors import ConfigError
from modelatlas.types import (
    Chunk,
    Completion,
    Embeddings,
    GenerationParams,
    LogLikelihood,
    Prompt,
    Usage,
)


class LlamaCppOptions(BackendOptions):
    n_ctx: int | None = Field(None, ge=16, description="context window; default: trained, capped at 8192")
    n_threads: int | None = Field(None, ge=1)


class LlamaCppBackend(Backend):
    name = "llamacpp"
    Options = LlamaCppOptions
    can_embed = True
    has_logprobs = True

    def __init__(self, model_id: str, location: str | None, options: LlamaCppOptions):
        if not location:
            raise ConfigError(f"{model_id}: the llamacpp backend needs the path of a .gguf file.")
        super().__init__(model_id, location, options)
        self.engine: Engine = get_engine(location, options.n_ctx, options.n_threads)

    def load(self) -> None:
        with self.engine.lock:
            self.engine.llm  # noqa: B018  (loads on first access)

    @property
    def context_length(self) -> int:
        return self.engine.n_ctx

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    async def generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        parts: list[str] = []
        final = Chunk()
        async for chunk in self.stream(prompt, params):
            parts.append(chunk.text)
            final = chunk
        return Completion(
            text="".join(parts),
            model=self.model_id,
            finish_reason=final.finish_reason or "stop",
            usage=final.usage or Usage(),
        )

    async def stream(self, prompt: Prompt, params: GenerationParams) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        sampling = Sampling(params.max_tokens, params.temperature, params.top_p, params.stop, params.seed)

        def put(item) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                with self.engine.lock:
                    tokens = self._tokens(prompt)
                    self.engine.check_fits(self.model_id, len(tokens), params.max_tokens)
                    for piece in self.engine.generate(tokens, sampling, cancel):
                        put(piece if isinstance(piece, str) else ("end", len(tokens), *piece))
            except BaseException as exc:
                put(exc)

        worker = threading.Thread(target=work, name=f"llamacpp-{self.model_id}", daemon=True)
        worker.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, str):
                    yield Chunk(text=item)
                    continue
                _, n_in, finish, n_out = item
                usage = Usage(input_tokens=n_in, output_tokens=n_out)
                yield Chunk(finish_reason=finish, usage=usage)
                return
        finally:
            cancel.set()

    def _tokens(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return self.engine.text_tokens(prompt)
        return self.engine.chat_tokens(as_messages(prompt))

    async def loglikelihood(self, context: str, continuation: str) -> LogLikelihood:
        def work():
            with self.engine.lock:
                return self.engine.loglikelihood(context, continuation)

        logprob, greedy, n = await asyncio.to_thread(work)
        return LogLikelihood(logprob=logprob, is_greedy=greedy, tokens=n)

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        engine = get_engine(self.location, self.options.n_ctx, self.options.n_threads, embedding=True)

        def work():
            with engine.lock:
                return engine.embed(list(texts))

        vectors, tokens = await asyncio.to_thread(work)
        return Embeddings(vectors=vectors, model=self.model_id, usage=Usage(input_tokens=tokens))
