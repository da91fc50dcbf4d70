"""A deterministic backend for testing pipelines: no model, same answer every time.

It answers with a fixed ``reply``, a reply looked up in ``responses`` by the last user
message, or the last user message itself. Tokens are whitespace-separated words. It can be
told to fail a number of times first (``fail_first``), to test retry logic, to fail in the
middle of a stream after some tokens (``fail_after``), to test what a client sees then, and to
wait between tokens (``delay_s``), to test concurrency and timing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence

from pydantic import Field

from modelatlas.backends.base import Backend, BackendOptions
from modelatlas.backends.declared import BackendFacts
from modelatlas.errors import BackendError, ContextLengthExceededError, RateLimitError
from modelatlas.types import (
    Chunk,
    Completion,
    Embeddings,
    GenerationParams,
    LogLikelihood,
    Prompt,
    Usage,
)


class EchoOptions(BackendOptions):
    reply: str | None = None
    responses: dict[str, str] = Field(default_factory=dict)
    delay_s: float = Field(0.0, ge=0.0)
    fail_first: int = Field(0, ge=0)
    fail_after: int | None = Field(None, ge=0)  # tokens streamed before a BackendError
    retry_after_s: float | None = 0.0
    context_length: int = Field(4096, ge=1)
    dimensions: int = Field(8, ge=1)


class EchoBackend(Backend):
    name = "echo"
    Options = EchoOptions
    capabilities = frozenset({"generate", "stream", "embeddings", "loglikelihood"})

    @classmethod
    def facts(cls, record) -> BackendFacts:
        return cls.declare(record, local=True, memory_bytes=0)

    def __init__(self, model_id: str, location: str | None, options: EchoOptions):
        super().__init__(model_id, location, options)
        self.failures_left = options.fail_first
        self.calls = 0

    @property
    def context_length(self) -> int:
        return self.options.context_length

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _answer(self, prompt: Prompt) -> str:
        last = (
            prompt
            if isinstance(prompt, str)
            else next((m.text for m in reversed(prompt) if m.role == "user"), "")
        )
        if self.options.reply is not None:
            return self.options.reply
        return self.options.responses.get(last, last)

    def _prompt_tokens(self, prompt: Prompt) -> int:
        text = prompt if isinstance(prompt, str) else " ".join(m.text for m in prompt)
        return self.count_tokens(text)

    def _start(self, prompt: Prompt, params: GenerationParams) -> tuple[list[str], int]:
        self.calls += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RateLimitError("echo: simulated rate limit", retry_after=self.options.retry_after_s)
        n_in = self._prompt_tokens(prompt)
        if n_in + params.max_tokens > self.context_length:
            raise ContextLengthExceededError(self.model_id, n_in, params.max_tokens, self.context_length)
        words = self._answer(prompt).split()
        return words[: params.max_tokens], n_in

    async def generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        words, n_in = self._start(prompt, params)
        await asyncio.sleep(self.options.delay_s * len(words))
        return Completion(
            text=" ".join(words),
            model=self.model_id,
            finish_reason="length" if len(words) == params.max_tokens else "stop",
            usage=Usage(input_tokens=n_in, output_tokens=len(words)),
        )

    async def stream(self, prompt: Prompt, params: GenerationParams) -> AsyncIterator[Chunk]:
        words, n_in = self._start(prompt, params)
        for i, word in enumerate(words):
            if i == self.options.fail_after:
                raise BackendError(f"echo: simulated failure after {i} tokens")
            await asyncio.sleep(self.options.delay_s)
            yield Chunk(text=word if i == 0 else " " + word)
        finish = "length" if len(words) == params.max_tokens else "stop"
        yield Chunk(finish_reason=finish, usage=Usage(input_tokens=n_in, output_tokens=len(words)))

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        vectors = [_hash_vector(t, self.options.dimensions) for t in texts]
        tokens = sum(self.count_tokens(t) for t in texts)
        return Embeddings(vectors=vectors, model=self.model_id, usage=Usage(input_tokens=tokens))

    async def loglikelihood(self, context: str, continuation: str) -> LogLikelihood:
        n = max(1, self.count_tokens(continuation))
        expected = self._answer(context).strip()
        greedy = continuation.strip() == expected
        return LogLikelihood(logprob=0.0 if greedy else -float(n), is_greedy=greedy, tokens=n)


def _hash_vector(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(dims)]
