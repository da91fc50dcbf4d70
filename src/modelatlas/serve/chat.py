"""Serving logic for /v1/chat/completions and /v1/completions, whole or streamed (SSE).

A chat request with ``n`` > 1 runs ``n`` generations of the same prompt (choice ``i`` with seed
``seed + i`` when a seed is given, so the choices differ and the set is reproducible), each
metered: the usage counts the prompt once, as OpenAI does, and the output tokens of every choice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel

from modelatlas.backends.base import collect
from modelatlas.backends.model import Model
from modelatlas.serve import chat_params, completions
from modelatlas.serve.content import to_messages
from modelatlas.serve.errors import ShuttingDownError, error_event
from modelatlas.serve.lifetime import Shutdown
from modelatlas.serve.models import ServedModels, fit_max_tokens
from modelatlas.serve.protocol import (
    MAX_SEED,
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChoiceLogprobs,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    Delta,
    FunctionCallOut,
    TokenLogprobOut,
    ToolCallDelta,
    ToolCallOut,
    TopLogprobOut,
    UsageInfo,
    finish,
    usage_info,
)
from modelatlas.structured import TokenLogprob
from modelatlas.types import Chunk, Completion, GenerationParams, Prompt, ToolCall, Usage

TextRequest = ChatCompletionRequest | CompletionRequest
Indexed = tuple[int, Chunk]  # a chunk of choice ``index``
T = TypeVar("T")


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


def choices_of(req: TextRequest) -> int:
    return req.choices if isinstance(req, ChatCompletionRequest) else 1


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
        runs = [
            collect(_noted(model.stream(prompt, each), progress.parts), model.id)
            for each in _each_choice(params, choices_of(req))
        ]
        results = await _all(runs)
    ident, created = _identity(req)
    usage = _summed([r.usage for r in results])
    if isinstance(req, ChatCompletionRequest):
        chat_choices = [_chat_choice(i, r, params) for i, r in enumerate(results)]
        return ChatCompletionResponse(
            id=ident, created=created, model=req.model, choices=chat_choices, usage=usage
        )
    result = results[0]
    choice = CompletionChoice(text=result.text, finish_reason=finish(result.finish_reason))
    return CompletionResponse(id=ident, created=created, model=req.model, choices=[choice], usage=usage)


def _chat_choice(index: int, result: Completion, params: GenerationParams) -> ChatChoice:
    calls = [_call(call) for call in result.tool_calls] or None
    content = result.text if result.text or not calls else None  # only calls: content null
    message = AssistantMessage(content=content, tool_calls=calls)
    logprobs = _logprobs(result.logprobs) if params.logprobs is not None else None
    return ChatChoice(
        index=index, message=message, finish_reason=finish(result.finish_reason), logprobs=logprobs
    )


async def open_stream(pool: ServedModels, req: TextRequest) -> AsyncGenerator[Indexed, None]:
    """The model's chunks, each with the index of its choice, holding a queue slot until the
    stream ends or is closed.

    Await the first chunk before answering: errors (unknown model, full queue, context too
    long, a setting the model does not honour) then become proper error responses instead of
    a broken stream."""
    async with pool.slot(req.model):
        model, prompt, params = await _prepare(pool, req)
        streams = [model.stream(prompt, each) for each in _each_choice(params, choices_of(req))]
        merged = _merged(streams)
        try:
            async for item in merged:
                yield item
        finally:
            await merged.aclose()  # stops the generations when the client has gone


def _each_choice(params: GenerationParams, n: int) -> list[GenerationParams]:
    """The params of each of ``n`` choices: a given seed moves on by one per choice."""
    if n == 1 or params.seed is None:
        return [params] * n
    return [params.model_copy(update={"seed": (params.seed + i) % (MAX_SEED + 1)}) for i in range(n)]


async def _all(runs: Sequence[Awaitable[T]]) -> list[T]:
    """Every run's result, run together; the first failure cancels the others and is raised
    as it is (asyncio.gather would leave them running, a TaskGroup would wrap the error)."""
    tasks = [asyncio.ensure_future(run) for run in runs]
    try:
        return [await task for task in tasks]
    finally:
        for task in tasks:
            task.cancel()


async def _merged(streams: list[AsyncGenerator[Chunk, None]]) -> AsyncGenerator[Indexed, None]:
    """The chunks of every stream as they come, each with its stream's index."""
    if len(streams) == 1:
        try:
            async for chunk in streams[0]:
                yield 0, chunk
        finally:
            await streams[0].aclose()
        return
    queue: asyncio.Queue[tuple[int, Chunk | BaseException | None]] = asyncio.Queue()

    async def pump(index: int, stream: AsyncGenerator[Chunk, None]) -> None:
        try:
            async for chunk in stream:
                await queue.put((index, chunk))
            await queue.put((index, None))
        except Exception as exc:  # the consumer raises it
            await queue.put((index, exc))
        finally:
            await stream.aclose()

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                running -= 1
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()


async def _noted(chunks: AsyncIterator[Chunk], parts: list[str]) -> AsyncIterator[Chunk]:
    async for chunk in chunks:
        if chunk.text:
            parts.append(chunk.text)
        yield chunk


@dataclass
class _Finished:
    """The choices a stream has finished, and what they used."""

    left: int
    usages: list[Usage] = field(default_factory=list)

    def add(self, usage: Usage | None) -> bool:
        """Note one more finished choice; True once all are."""
        self.left -= 1
        if usage is not None:
            self.usages.append(usage)
        return self.left <= 0


async def sse_events(
    req: TextRequest,
    first: Indexed,
    chunks: AsyncGenerator[Indexed, None],
    disconnected,
    ticket,
    model,
    shutdown: Shutdown,
) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk shapes, ending with ``data: [DONE]``.

    The ticket meters the final usage when every choice has ended, or what was sent when the
    client leaves early (its text, counted with the model's tokenizer, and the prompt). An
    error after the first chunk (the backend failed, the server's shutdown grace period ran
    out) can no longer change the status: it becomes an error event in OpenAI's shape, then
    ``[DONE]``, and is metered with its own status."""
    ident, created = _identity(req)
    frame = _Frame(req, ident, created)
    finished = _Finished(choices_of(req))
    sent: list[str] = []
    try:
        if isinstance(req, ChatCompletionRequest):
            for index in range(req.choices):
                yield _event(frame.chat(index, Delta(role="assistant", content="")))
        item: Indexed | None = first
        while item is not None:
            index, chunk = item
            if chunk.text or chunk.tool_calls or chunk.logprobs:
                yield _event(frame.piece(index, chunk))
                sent.append(chunk.text)
            if chunk.finish_reason is not None:
                yield _event(frame.final(index, chunk))
                if finished.add(chunk.usage):
                    usage = _summed(finished.usages)
                    ticket.close(200, usage.prompt_tokens, usage.completion_tokens)
                    if req.include_usage:
                        yield _event(frame.usage(usage))
                    break
            if await disconnected():
                return
            try:
                async with shutdown.limit():
                    item = await anext(chunks, None)
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


def _summed(usages: list[Usage]) -> UsageInfo:
    """The prompt once (every choice reads the same one) and the output of every choice."""
    prompt = max((u.input_tokens for u in usages), default=0)
    return usage_info(prompt, sum(u.output_tokens for u in usages))


def _counted(model, req: TextRequest, text: str) -> tuple[int, int]:
    """Prompt and output tokens of a stream the client left: what was actually sent."""
    try:
        prompt_tokens = model.backend.count_prompt_tokens(prompt_of(req))
        return prompt_tokens, model.count_tokens(text) if text else 0
    except Exception:  # metering must not fail the request; an estimate is better than nothing
        return 0, len(text.split())


async def _prepare(pool: ServedModels, req: TextRequest) -> tuple[Model, Prompt, GenerationParams]:
    req.check()  # text that is not valid Unicode, an empty prompt: a metered 400
    if isinstance(req, ChatCompletionRequest):
        chat_params.check(req)  # a parameter these models cannot honour: a 400 naming it
    model = await pool.get(req.model, mode="text")
    prompt = prompt_of(req)
    model.check_prompt(prompt)  # an image for a text-only model: a 400 naming what it accepts
    params = _params(req, 1)
    model.backend.check_params(params)  # before counting a prompt with tools it cannot render
    max_tokens = await fit_max_tokens(model, prompt, req.requested_tokens(), params)
    return model, prompt, params.model_copy(update={"max_tokens": max_tokens})


def _params(req: TextRequest, max_tokens: int) -> GenerationParams:
    if isinstance(req, ChatCompletionRequest):
        return chat_params.generation_params(req, max_tokens)
    return GenerationParams(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        stop=req.stops(),
        seed=req.seed,
    )


def _identity(req: TextRequest) -> tuple[str, int]:
    prefix = "chatcmpl" if isinstance(req, ChatCompletionRequest) else "cmpl"
    return f"{prefix}-{uuid.uuid4().hex}", int(time.time())


def _call(call: ToolCall) -> ToolCallOut:
    return ToolCallOut(id=call.id, function=FunctionCallOut(name=call.name, arguments=call.arguments))


def _logprobs(tokens: list[TokenLogprob] | None) -> ChoiceLogprobs:
    """OpenAI's ``choices[i].logprobs``: each token with its likeliest alternatives."""
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                token=t.token,
                logprob=t.logprob,
                bytes=t.bytes,
                top_logprobs=[TopLogprobOut(token=o.token, logprob=o.logprob, bytes=o.bytes) for o in t.top],
            )
            for t in tokens or []
        ]
    )


@dataclass
class _Frame:
    """The chunk shapes of one stream (chat or completions), with its id and time."""

    req: TextRequest
    ident: str
    created: int
    calls: dict[int, int] = field(default_factory=dict)  # tool calls sent so far, per choice

    def chat(self, index: int, delta: Delta, reason=None, logprobs=None) -> ChatCompletionChunk:
        choice = ChatChunkChoice(index=index, delta=delta, finish_reason=reason, logprobs=logprobs)
        return ChatCompletionChunk(
            id=self.ident, created=self.created, model=self.req.model, choices=[choice]
        )

    def piece(self, index: int, chunk: Chunk) -> BaseModel:
        if not isinstance(self.req, ChatCompletionRequest):
            choice = CompletionChoice(text=chunk.text)
            return CompletionResponse(
                id=self.ident, created=self.created, model=self.req.model, choices=[choice]
            )
        start = self.calls.get(index, 0)
        self.calls[index] = start + len(chunk.tool_calls)
        deltas = [
            ToolCallDelta(
                index=start + k, id=c.id, function=FunctionCallOut(name=c.name, arguments=c.arguments)
            )
            for k, c in enumerate(chunk.tool_calls)
        ]
        delta = Delta(content=chunk.text or None, tool_calls=deltas or None)
        logprobs = _logprobs(chunk.logprobs) if chunk.logprobs is not None else None
        return self.chat(index, delta, logprobs=logprobs)

    def final(self, index: int, chunk: Chunk) -> BaseModel:
        reason = finish(chunk.finish_reason)
        if isinstance(self.req, ChatCompletionRequest):
            return self.chat(index, Delta(), reason)
        choice = CompletionChoice(text="", finish_reason=reason)
        return CompletionResponse(id=self.ident, created=self.created, model=self.req.model, choices=[choice])

    def usage(self, usage: UsageInfo) -> BaseModel:
        if isinstance(self.req, ChatCompletionRequest):
            return ChatCompletionChunk(
                id=self.ident, created=self.created, model=self.req.model, choices=[], usage=usage
            )
        return CompletionResponse(
            id=self.ident, created=self.created, model=self.req.model, choices=[], usage=usage
        )


def _event(obj: BaseModel) -> str:
    return f"data: {obj.model_dump_json()}\n\n"
