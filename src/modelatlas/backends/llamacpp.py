"""GGUF models through llama-cpp-python, in this process.

Chat uses the file's own chat template; a plain string is completed as is. Every caller of
the same file shares one loaded engine, whose own thread runs the calls one at a time: concurrent
async callers never interleave, and the event loop stays free.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

from pydantic import Field

from modelatlas.backends.base import Backend, BackendOptions, as_messages, collect
from modelatlas.backends.channel import Channel
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
        self.engine.submit(lambda: self.engine.llm).result()

    def identity(self) -> str:
        from modelatlas.backends.identity import fingerprint

        return f"llamacpp:{fingerprint(self.location)}"

    @property
    def context_length(self) -> int:
        return self.engine.n_ctx

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    async def generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        return await collect(self.stream(prompt, params), self.model_id)

    async def stream(self, prompt: Prompt, params: GenerationParams) -> AsyncIterator[Chunk]:
        channel = Channel(asyncio.get_running_loop())
        cancel = threading.Event()
        sampling = Sampling(params.max_tokens, params.temperature, params.top_p, params.stop, params.seed)

        def work() -> None:
            try:
                if cancel.is_set():  # the caller left while this call waited its turn
                    return
                tokens = self._tokens(prompt)
                self.engine.check_fits(self.model_id, len(tokens), params.max_tokens)
                first = True
                for piece in self.engine.generate(tokens, sampling, cancel):
                    if isinstance(piece, str):
                        channel.put(piece, urgent=first)
                        first = False
                    else:
                        channel.put(("end", len(tokens), *piece), urgent=True)
            except BaseException as exc:
                channel.put(exc, urgent=True)

        self.engine.submit(work)
        try:
            while True:
                batch = await channel.get()
                for item in batch:
                    if isinstance(item, BaseException):
                        raise item
                texts = "".join(item for item in batch if isinstance(item, str))
                if texts:
                    yield Chunk(text=texts)
                if not isinstance(batch[-1], str):
                    _, n_in, finish, n_out = batch[-1]
                    yield Chunk(finish_reason=finish, usage=Usage(input_tokens=n_in, output_tokens=n_out))
                    return
        finally:
            cancel.set()

    def _tokens(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return self.engine.text_tokens(prompt)
        return self.engine.chat_tokens(as_messages(prompt))

    async def loglikelihood(self, context: str, continuation: str) -> LogLikelihood:
        job = self.engine.submit(self.engine.loglikelihood, context, continuation)
        logprob, greedy, n = await asyncio.wrap_future(job)
        return LogLikelihood(logprob=logprob, is_greedy=greedy, tokens=n)

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        engine = get_engine(self.location, self.options.n_ctx, self.options.n_threads, embedding=True)

        vectors, tokens = await asyncio.wrap_future(engine.submit(engine.embed, list(texts)))
        return Embeddings(vectors=vectors, model=self.model_id, usage=Usage(input_tokens=tokens))
