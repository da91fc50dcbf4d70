"""Serving logic for /v1/chat/completions and /v1/completions, whole or streamed (SSE)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from pydantic import BaseModel

from modelatlas.serve.models import ModelPool, fit_max_tokens
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
from modelatlas.types import Chunk, GenerationParams, Message, Prompt

TextRequest = ChatCompletionRequest | CompletionRequest


def chat_prompt(req: ChatCompletionRequest) -> Prompt:
    role = {"developer": "system"}
    return [Message(role=role.get(m.role, m.role), content=m.text()) for m in req.messages]


def prompt_of(req: TextRequest) -> Prompt:
    return chat_prompt(req) if isinstance(req, ChatCompletionRequest) else req.prompt


async def complete(pool: ModelPool, req: TextRequest) -> ChatCompletionResponse | CompletionResponse:
    """The whole answer, in the response shape of the request's endpoint."""
    async with pool.slot(req.model):
        model, prompt, params = await _prepare(pool, req)
        result = await model.generate(prompt, params)
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


async def open_stream(pool: ModelPool, req: TextRequest) -> AsyncIterator[Chunk]:
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


async def sse_events(
    req: TextRequest, first: Chunk, chunks: AsyncIterator[Chunk], disconnected
) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk shapes, ending with ``data: [DONE]``."""
    ident, created = _identity(req)
    chat = isinstance(req, ChatCompletionRequest)
    try:
        if chat:
            yield _event(_chat_chunk(req, ident, created, Delta(role="assistant", content="")))
        chunk: Chunk | None = first
        while chunk is not None:
            if chunk.finish_reason is not None:
                yield _event(_final(req, ident, created, chunk))
                if req.include_usage and chunk.usage is not None:
                    usage = usage_info(chunk.usage.input_tokens, chunk.usage.output_tokens)
                    yield _event(_usage_chunk(req, ident, created, usage))
                break
            if chunk.text:
                yield _event(_text_chunk(req, ident, created, chunk.text))
            if await disconnected():
                return
            chunk = await anext(chunks, None)
        yield "data: [DONE]\n\n"
    finally:
        await chunks.aclose()


async def _prepare(pool: ModelPool, req: TextRequest):
    model = await pool.get(req.model, mode="text")
    prompt = prompt_of(req)
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
