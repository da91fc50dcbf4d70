"""POST /v1/responses: OpenAI's Responses API over the same served models as chat.

The request becomes Messages and GenerationParams (serve/responses_input.py) and runs as a chat
request does: a queue slot of the pool, the Model's stream (so the backend's checks, the cache,
retries and timing are the wrapper's), the same ticket metering the key's usage and budget,
the same cancellation when the client leaves. Only the shapes differ: a response object with
``output`` items, or the Responses event stream (serve/responses_events.py).

Stored conversations (``store``, ``previous_response_id``): serve/responses_output.py.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from modelatlas.backends.base import collect
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import InvalidRequestError
from modelatlas.serve import image_urls, responses_events, responses_input
from modelatlas.serve import responses_protocol as rp
from modelatlas.serve.errors import ShuttingDownError
from modelatlas.serve.lifetime import ClientLeft, watched
from modelatlas.serve.metering import Ticket
from modelatlas.serve.models import ServedModels, check_endpoint, fit_max_tokens
from modelatlas.serve.protocol import ChatCompletionRequest, ChatMessage
from modelatlas.serve.responses_output import ResponseStore, Turn, finished
from modelatlas.serve.responses_protocol import ResponseObject, ResponsesRequest
from modelatlas.types import Chunk, Completion, Message

PATH = "/v1/responses"
ENDPOINT = "responses"


def reserved(req: rp.ResponsesRequest) -> ChatCompletionRequest:
    """The request as the chat request the key's limits reserve for (serve/reserve.py counts its
    messages' text and its max tokens)."""
    texts = [req.instructions or ""]
    if isinstance(req.input, str):
        texts.append(req.input)
    else:
        texts += [_item_text(item) for item in req.input]
    messages = [ChatMessage(role="user", content=text) for text in texts if text] or [
        ChatMessage(role="user")
    ]
    return ChatCompletionRequest(
        model=req.model, messages=messages, max_completion_tokens=req.max_output_tokens
    )


def _item_text(item: object) -> str:
    content: Any = (
        getattr(item, "content", None) or getattr(item, "output", None) or getattr(item, "arguments", "")
    )
    if isinstance(content, str):
        return content
    return "".join(getattr(part, "text", "") or "" for part in content)


async def answer(
    request: Request, req: rp.ResponsesRequest, ticket: Ticket, headers: dict[str, str]
) -> Response:
    """The response, whole or as events; the ticket is closed with what it used."""
    turn = Turn(req, ticket.key)
    if not req.stream:
        return await _whole(request, turn, ticket, headers)
    chunks = _open_stream(request, turn)
    try:
        first = await anext(chunks)
    except BaseException as exc:
        ticket.fail(exc)
        await chunks.aclose()
        raise
    state = request.app.state
    events = responses_events.stream(
        turn, first, chunks, request.is_disconnected, ticket, state.shutdown, state.responses
    )
    headers = {"Cache-Control": "no-cache", **headers}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def _whole(request: Request, turn: Turn, ticket: Ticket, headers: dict[str, str]) -> Response:
    """A whole answer; a client that leaves first cancels the generation and is metered for
    what was generated, as cancelled (499), as on the chat route."""
    state = request.app.state
    try:
        result = await watched(_generate(request, turn), request.receive, state.shutdown)
    except ClientLeft:
        ticket.close(499, *turn.counted(), cancelled=True)
        return Response(status_code=499)
    except BaseException as exc:
        if isinstance(exc, ShuttingDownError):
            ticket.close(exc.http_status, *turn.counted(), cancelled=True)
        ticket.fail(exc)
        raise
    ticket.close(200, result.usage.input_tokens, result.usage.output_tokens)
    body = finished(turn, result, state.responses)
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)


async def _generate(request: Request, turn: Turn) -> Completion:
    pool: ServedModels = request.app.state.pool
    async with pool.slot(turn.req.model):
        stream = await _prepare(request, turn)
        return await collect(_noted(stream, turn.parts), turn.req.model)


async def _open_stream(request: Request, turn: Turn) -> AsyncGenerator[Chunk, None]:
    """The model's chunks, holding a queue slot until the stream ends or is closed; await the
    first before answering, so that early errors are proper error responses."""
    pool: ServedModels = request.app.state.pool
    async with pool.slot(turn.req.model):
        stream = await _prepare(request, turn)
        try:
            async for chunk in _noted(stream, turn.parts):
                yield chunk
        finally:
            await stream.aclose()  # stops the generation when the client has gone


async def _noted(chunks: AsyncIterator[Chunk], parts: list[str]) -> AsyncIterator[Chunk]:
    async for chunk in chunks:
        if chunk.text:
            parts.append(chunk.text)
        yield chunk


async def _prepare(request: Request, turn: Turn) -> AsyncGenerator[Chunk, None]:
    """Check the request, build its conversation and settings, and start the model's stream."""
    state, req = request.app.state, turn.req
    responses_input.check(req)
    record = state.pool.record(req.model)
    check_endpoint(record, "chat.completions", state.allow_chat_on_base)  # a base model: a 400
    model = await state.pool.get(req.model, mode="text")
    turn.model = model
    await _fetch_images(req, record, state.image_urls)
    earlier = state.responses.earlier(req.previous_response_id, turn.key) if req.previous_response_id else ()
    turn.history = [*earlier, *responses_input.turn_messages(req)]
    system = [Message.system(req.instructions)] if req.instructions else []
    turn.prompt = system + turn.history
    try:  # an image for a text-only model: a 400 naming what it accepts
        model.check_prompt(turn.prompt)
    except InvalidRequestError as exc:  # it names the conversation's messages[i]; ours is 'input'
        raise InvalidRequestError(exc.message, hint=exc.hint, param="input") from None
    max_tokens = await fit_max_tokens(model, turn.prompt, req.max_output_tokens)
    params = responses_input.generation_params(req, max_tokens)
    stream: AsyncGenerator[Chunk, None] = model.stream(turn.prompt, params)
    return stream


async def _fetch_images(
    req: rp.ResponsesRequest, record: ModelRecord, policy: image_urls.ImageURLPolicy
) -> None:
    """Web-address images for a local vision model: fetched (with --allow-image-urls) or refused,
    by the chat route's rules (serve/image_urls.py); in place."""
    from modelatlas.backends.declared import facts

    model_facts = facts(record)
    if isinstance(req.input, str) or "image" not in model_facts.accepts or model_facts.hosted:
        return
    for i, item in enumerate(req.input):
        for j, part in enumerate(getattr(item, "content", None) or ()):
            url = getattr(part, "image_url", None)
            if isinstance(part, rp.InputImage) and url and not url.startswith("data:"):
                where = f"input[{i}].content[{j}].image_url"
                if not policy.allow or not url.lower().startswith(("http://", "https://")):
                    raise InvalidRequestError(
                        f"'{where}': this server does not fetch this image URL.",
                        hint="Send the image's bytes as a data URL (data:image/png;base64,...), or "
                        "start the server with --allow-image-urls (http and https only).",
                        param=where,
                    )
                part.image_url = await image_urls.fetch(url, where, policy.max_mb)


__all__ = ["ENDPOINT", "PATH", "ResponseObject", "ResponseStore", "ResponsesRequest", "answer", "reserved"]
