"""Serving logic for /v1/chat/completions and /v1/completions, whole or streamed (SSE)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pydantic import BaseModel

from modelatlas.backends.base import collect
from modelatlas.backends.model import Model
from modelatlas.serve import completions
from modelatlas.serve.content import to_messages
from modelatlas.serve.errors import ShuttingDownError, error_event
from modelatlas.serve.lifetime import Shutdown
from modelatlas.serve.models import ServedModels, fit_max_tokens
from modelatlas.serve.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    Delta,
    finish,
    usage_info,
)
from modelatlas.types import Chunk, GenerationParams, Prompt

TextRequest = ChatCompletionRequest | CompletionRequest


@dataclass
class Progress:
    """What a generation produced so far, to meter a request that ends before its answer."""

    model: Model | None = None
    parts: list[str] = field(default_factory=list)

    def counted(self, req: TextRequest) -> tuple[int, int]:
        return _counted(self.model, req, "".join(self.parts)) if self.model else (0, 0)


def chat_prompt(req: ChatCompletionRequest) -> Prompt:
    return to_messages(req.messages)


def prompt_of(req: TextRequest) -> Prompt:
    return chat_prompt(req) if isinstance(req, ChatCompletionRequest) else completions.single_prompt(req)


async def complete(
    pool: ServedModels, req: TextRequest, progress: Progress | None = None
) -> ChatCompletionResponse | CompletionResponse:
    """The whole answer, in the response shape of the request's endpoint.

    Collected from the model's stream (what ``Model.generate`` does too), so that ``progress``
    knows the text so far when the client leaves and the generation is cancelled."""
    if isinstance(req, CompletionRequest) and req.scored:  # echo, logprobs, several prompts
        return await completions.complete(pool, req)
    progress = progress or Progress()
    async with pool.slot(req.model):
        model, prompt, params = await _prepare(pool, req)
        progress.model = model
        result = await collect(_noted(model.stream(prompt, params), progress.parts), model.id)
    ident, created = _identity(req)
    usage = usage_info(result.usage.input_tokens, result.usage.output_tokens)
    reason = finish(result.finish_reason)
    if isinstance(req, ChatCompletionRequest):
        choice = ChatChoice(message=AssistantMessage(content=result.text), finish_reason=reason)
        return ChatCompletionResponse(
            id=ident, created=created, model=req.model, choices=[choice], usage=usage
        )
    choice = CompletionChoice(text=result.text, finish_reason=reason)
    return CompletionResponse(id=ident, created=created, model=req.model, choices=[choice], usage=usage)


async def open_stream(pool: ServedModels, req: TextRequest) -> AsyncIterator[Chunk]:
    """The model's chunks, holding a queue slot until the stream ends or is closed.

    Await the first chunk before answering: errors (unknown model, full queue, context too
    long) then become proper error responses instead of a broken stream."""
    async with pool.slot(req.model):
        model, prompt, params = await _prepare(pool, req)
        stream = model.stream(prompt, params)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()  # stops the generation when the client has gone


async def _noted(chunks: AsyncIterator[Chunk], parts: list[str]) -> AsyncIterator[Chunk]:
    async for chunk in chunks:
        if chunk.text:
            parts.append(chunk.text)
        yield chunk


async def sse_events(
    req: TextRequest,
    first: Chunk,
    chunks: AsyncIterator[Chunk],
    disconnected,
    ticket,
    model,
    shutdown: Shutdown,
) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk shapes, ending with ``data: [DONE]``.

    The ticket meters the final usage when the stream ends, or what was sent when the client
    leaves early (its text, counted with the model's tokenizer, and the prompt). An error after
    the first chunk (the backend failed, the server's shutdown grace period ran out) can no
    longer change the status: it becomes an error event in OpenAI's shape, then ``[DONE]``,
    and is metered with its own status."""
    ident, created = _identity(req)
    chat = isinstance(req, ChatCompletionRequest)
    sent: list[str] = []
    try:
        if chat:
            yield _event(_chat_chunk(req, ident, created, Delta(role="assistant", content="")))
        chunk: Chunk | None = first
        while chunk is not None:
            if chunk.finish_reason is not None:
                yield _event(_final(req, ident, created, chunk))
                usage = chunk.usage
                if usage is not None:
                    ticket.close(200, usage.input_tokens, usage.output_tokens)
                if req.include_usage and usage is not None:
                    info = usage_info(usage.input_tokens, usage.output_tokens)
                    yield _event(_usage_chunk(req, ident, created, info))
                break
            if chunk.text:
                yield _event(_text_chunk(req, ident, created, chunk.text))
                sent.append(chunk.text)
            if await disconnected():
                return
            try:
                async with shutdown.limit():
                    chunk = await anext(chunks, None)
            except Exception as exc:
                status, event = error_event(exc)
                cut = isinstance(exc, ShuttingDownError)  # the server ended it, not the model
                ticket.close(status, *_counted(model, req, "".join(sent)), cancelled=cut)
                yield event
                break
        yield "data: [DONE]\n\n"
    finally:
        await chunks.aclose()
        if not ticket.closed:
            ticket.close(200, *_counted(model, req, "".join(sent)), cancelled=True)


def _counted(model, req: TextRequest, text: str) -> tuple[int, int]:
    """Prompt and output tokens of a stream the client left: what was actually sent."""
    try:
        prompt = prompt_of(req)
        texts = [prompt] if isinstance(prompt, str) else [m.text for m in prompt]
        return sum(model.count_tokens(t) for t in texts if t), model.count_tokens(text) if text else 0
    except Exception:  # metering must not fail the request; an estimate is better than nothing
        return 0, len(text.split())


async def _prepare(pool: ServedModels, req: TextRequest):
    req.check()  # text that is not valid Unicode, an empty prompt: a metered 400
    model = await pool.get(req.model, mode="text")
    prompt = prompt_of(req)
    model.check_prompt(prompt)  # an image for a text-only model: a 400 naming what it accepts
    max_tokens = await fit_max_tokens(model, prompt, req.requested_tokens())
    params = GenerationParams(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        stop=req.stops(),
        seed=req.seed,
    )
    return model, prompt, params


def _identity(req: TextRequest) -> tuple[str, int]:
    prefix = "chatcmpl" if isinstance(req, ChatCompletionRequest) else "cmpl"
    return f"{prefix}-{uuid.uuid4().hex}", int(time.time())


def _chat_chunk(req, ident, created, delta: Delta, reason=None) -> ChatCompletionChunk:
    choice = ChatChunkChoice(delta=delta, finish_reason=reason)
    return ChatCompletionChunk(id=ident, created=created, model=req.model, choices=[choice])


def _text_chunk(req, ident, created, text: str) -> BaseModel:
    if isinstance(req, ChatCompletionRequest):
        return _chat_chunk(req, ident, created, Delta(content=text))
    choice = CompletionChoice(text=text)
    return CompletionResponse(id=ident, created=created, model=req.model, choices=[choice])


def _final(req, ident, created, chunk: Chunk) -> BaseModel:
    reason = finish(chunk.finish_reason)
    if isinstance(req, ChatCompletionRequest):
        return _chat_chunk(req, ident, created, Delta(), reason)
    choice = CompletionChoice(text="", finish_reason=reason)
    return CompletionResponse(id=ident, created=created, model=req.model, choices=[choice])


def _usage_chunk(req, ident, created, usage) -> BaseModel:
    if isinstance(req, ChatCompletionRequest):
        return ChatCompletionChunk(id=ident, created=created, model=req.model, choices=[], usage=usage)
    return CompletionResponse(id=ident, created=created, model=req.model, choices=[], usage=usage)


def _event(obj: BaseModel) -> str:
    return f"data: {obj.model_dump_json()}\n\n"
