"""The Responses API's event stream, as the openai SDK parses it (``event:`` and ``data:`` lines,
each event with its ``type`` and a ``sequence_number``; no ``[DONE]``):

response.created, response.in_progress; for the text: response.output_item.added (a message),
response.content_part.added, response.output_text.delta (one per chunk),
response.output_text.done, response.content_part.done, response.output_item.done; for each
function call (it arrives whole, in one chunk): response.output_item.added,
response.function_call_arguments.delta and .done, response.output_item.done; then
response.completed, or response.incomplete when the answer hit max_output_tokens.

Metering is the chat stream's: the final usage when the stream ends; what was sent (counted
with the model's tokenizer) when the client leaves; an error after the first event (the
backend failed, the server's shutdown grace period ran out) becomes a response.failed event
and is metered with its own status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from modelatlas.parts import ToolCall
from modelatlas.serve import responses_protocol as rp
from modelatlas.serve.errors import ShuttingDownError, error_body
from modelatlas.serve.lifetime import Shutdown
from modelatlas.serve.metering import Ticket
from modelatlas.serve.responses_output import (
    ResponseStore,
    Turn,
    finished,
    function_call,
    item_id,
    logprobs,
    response_object,
)
from modelatlas.types import Chunk, Completion, Usage


class Writer:
    """The events of one response, numbered, with the output items they build."""

    def __init__(self, turn: Turn):
        self.turn = turn
        self.sequence = 0
        self.output: list[rp.OutputItem] = []
        self.message: rp.OutputMessage | None = None  # the message being written, if any
        self.text: list[str] = []
        self.tokens: list[rp.TokenLogprob] = []
        self.calls: list[ToolCall] = []

    def event(self, kind: str, **data: Any) -> str:
        body = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(body, ensure_ascii=False)}\n\n"

    def started(self) -> list[str]:
        response = response_object(self.turn, "in_progress").model_dump()
        return [
            self.event("response.created", response=response),
            self.event("response.in_progress", response=response),
        ]

    def chunk(self, chunk: Chunk) -> list[str]:
        events: list[str] = []
        if chunk.text:
            events += self._open()
            self.text.append(chunk.text)
            tokens = logprobs(chunk.logprobs)
            self.tokens += tokens
            assert self.message is not None
            where = {"item_id": self.message.id, "output_index": len(self.output), "content_index": 0}
            events.append(
                self.event("response.output_text.delta", **where, delta=chunk.text, logprobs=_dump(tokens))
            )
        for call in chunk.tool_calls:
            events += self._close("completed") + self._call(call)
        return events

    def _open(self) -> list[str]:
        if self.message is not None:
            return []
        self.message = rp.OutputMessage(id=item_id("msg"), status="in_progress")
        index = len(self.output)
        part = rp.OutputTextPart(text="").model_dump()
        return [
            self.event("response.output_item.added", output_index=index, item=self.message.model_dump()),
            self.event(
                "response.content_part.added",
                item_id=self.message.id,
                output_index=index,
                content_index=0,
                part=part,
            ),
        ]

    def _close(self, status: str) -> list[str]:
        message = self.message
        if message is None:
            return []
        text, index = "".join(self.text), len(self.output)
        part = rp.OutputTextPart(text=text, logprobs=self.tokens)
        done = message.model_copy(update={"status": status, "content": [part]})
        where = {"item_id": message.id, "output_index": index, "content_index": 0}
        events = [
            self.event("response.output_text.done", **where, text=text, logprobs=_dump(self.tokens)),
            self.event("response.content_part.done", **where, part=part.model_dump()),
            self.event("response.output_item.done", output_index=index, item=done.model_dump()),
        ]
        self.output.append(done)
        self.message, self.text, self.tokens = None, [], []
        return events

    def _call(self, call: ToolCall) -> list[str]:
        item = function_call(call)
        self.calls.append(call)
        index, where = len(self.output), {"item_id": item.id, "output_index": len(self.output)}
        added = item.model_copy(update={"status": "in_progress", "arguments": ""})
        self.output.append(item)
        return [
            self.event("response.output_item.added", output_index=index, item=added.model_dump()),
            self.event("response.function_call_arguments.delta", **where, delta=item.arguments),
            self.event(
                "response.function_call_arguments.done", **where, arguments=item.arguments, name=item.name
            ),
            self.event("response.output_item.done", output_index=index, item=item.model_dump()),
        ]

    def finished(self, chunk: Chunk, store: ResponseStore) -> list[str]:
        """The last events: the open message closed (or an empty one, when the model wrote
        nothing and called nothing), then the whole response."""
        status = "incomplete" if chunk.finish_reason == "length" else "completed"
        events = self._open() if self.message is None and not self.output else []
        events += self._close(status)
        text = "".join(item.content[0].text for item in self.output if isinstance(item, rp.OutputMessage))
        result = Completion(
            text=text,
            model=self.turn.req.model,
            finish_reason=chunk.finish_reason or "stop",
            usage=chunk.usage or Usage(),
            tool_calls=tuple(self.calls),
        )
        body = finished(self.turn, result, store, self.output)
        events.append(self.event(f"response.{body.status}", response=body.model_dump()))
        return events

    def failed(self, exc: BaseException) -> tuple[int, str]:
        """The status to meter and the response.failed event for an error mid-stream."""
        status, envelope, _ = error_body(exc)
        body = response_object(self.turn, "failed", self.output)
        body.error = rp.ResponseError(
            code=envelope.error.code or "server_error", message=envelope.error.message
        )
        return status, self.event("response.failed", response=body.model_dump())


def _dump(tokens: list[rp.TokenLogprob]) -> list[dict[str, Any]]:
    return [t.model_dump() for t in tokens]


async def stream(
    turn: Turn,
    first: Chunk,
    chunks: AsyncGenerator[Chunk, None],
    disconnected: Callable[[], Awaitable[bool]],
    ticket: Ticket,
    shutdown: Shutdown,
    store: ResponseStore,
) -> AsyncIterator[str]:
    """The events of ``turn``'s answer, from its first chunk on; metered on ``ticket``."""
    writer = Writer(turn)
    try:
        for event in writer.started():
            yield event
        chunk: Chunk | None = first
        while chunk is not None:
            for event in writer.chunk(chunk):
                yield event
            if chunk.finish_reason is not None:
                usage = chunk.usage or Usage()
                ticket.close(200, usage.input_tokens, usage.output_tokens)
                for event in writer.finished(chunk, store):
                    yield event
                break
            if await disconnected():
                return
            try:
                async with shutdown.limit():
                    chunk = await anext(chunks, None)
            except Exception as exc:
                status, event = writer.failed(exc)
                cut = isinstance(exc, ShuttingDownError)  # the server ended it, not the model
                ticket.close(status, *turn.counted(), cancelled=cut)
                yield event
                break
    finally:
        await chunks.aclose()
        if not ticket.closed:
            ticket.close(200, *turn.counted(), cancelled=True)
