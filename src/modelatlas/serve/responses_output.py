"""The response object and its output items, built alike for a whole answer and for a
stream's last event; the Turn (one request on its way); the store of recent conversations.

``store``: OpenAI keeps a response unless ``store`` is false, so that a later request can go
on from it with ``previous_response_id``. This server keeps the conversations of the last
``STORE_SIZE`` stored responses in memory, each visible only to the key that made it; they are
gone when the server restarts (a 400 then says so). There is no GET or DELETE of a stored
response.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from modelatlas.errors import InvalidRequestError
from modelatlas.parts import ToolCall
from modelatlas.serve import responses_input
from modelatlas.serve import responses_protocol as rp
from modelatlas.store.keys import KeyInfo
from modelatlas.structured import TokenLogprob
from modelatlas.types import Completion, Message

STORE_SIZE = 1000  # conversations kept for previous_response_id (about 1 MB for short chats)


class ResponseStore:
    """The conversations of recently stored responses, by response id, least recent first out
    (used from the event loop only: no lock needed)."""

    def __init__(self, size: int = STORE_SIZE):
        self.size = size
        self._kept: OrderedDict[str, tuple[str | None, tuple[Message, ...]]] = OrderedDict()

    def keep(self, ident: str, key: KeyInfo | None, messages: tuple[Message, ...]) -> None:
        self._kept[ident] = (key.id if key else None, messages)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def earlier(self, ident: str, key: KeyInfo | None) -> tuple[Message, ...]:
        kept = self._kept.get(ident)
        if kept is None or kept[0] != (key.id if key else None):  # another key's: not found
            raise InvalidRequestError(
                f"Previous response with id {ident!r} not found.",
                hint="This server keeps stored responses in memory: they are gone after a restart, "
                f"and only its last {self.size} are kept. Send the earlier turns in 'input' instead.",
                param="previous_response_id",
            )
        self._kept.move_to_end(ident)
        return kept[1]


@dataclass
class Turn:
    """One request on its way: its id, its conversation, and what the model wrote so far (to
    meter a request that ends before its answer, and to store the answer)."""

    req: rp.ResponsesRequest
    key: KeyInfo | None
    ident: str = field(default_factory=lambda: f"resp_{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))
    model: object = None
    prompt: list[Message] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)  # the prompt without the instructions
    parts: list[str] = field(default_factory=list)

    def counted(self) -> tuple[int, int]:
        """Prompt and output tokens of what was sent, counted with the model's tokenizer."""
        text = "".join(self.parts)
        try:
            count = self.model.count_tokens  # type: ignore[attr-defined]
            return sum(count(m.text) for m in self.prompt if m.text), count(text) if text else 0
        except Exception:  # metering must not fail the request; an estimate is better than nothing
            return 0, len(text.split())


def finished(
    turn: Turn, result: Completion, store: ResponseStore, output: list[rp.OutputItem] | None = None
) -> rp.ResponseObject:
    """The response object of a finished generation (``output``: the items a stream sent, else
    built from ``result``), kept for ``previous_response_id`` unless the request said
    ``store: false``."""
    output = output_items(result) if output is None else output
    body = response_object(turn, "incomplete" if result.finish_reason == "length" else "completed", output)
    body.usage = rp.ResponseUsage.of(result.usage.input_tokens, result.usage.output_tokens)
    body.completed_at = int(time.time())
    if turn.req.stored:
        answer = Message(role="assistant", content=result.text, tool_calls=result.tool_calls)
        store.keep(turn.ident, turn.key, (*turn.history, answer))
    return body


def output_items(result: Completion) -> list[rp.OutputItem]:
    """A message with the text (left out when the model only called functions), then the calls."""
    items: list[rp.OutputItem] = []
    status = "incomplete" if result.finish_reason == "length" else "completed"
    if result.text or not result.tool_calls:
        part = rp.OutputTextPart(text=result.text, logprobs=logprobs(result.logprobs))
        items.append(rp.OutputMessage(id=item_id("msg"), status=status, content=[part]))
    items += [function_call(call) for call in result.tool_calls]
    return items


def function_call(call: ToolCall) -> rp.OutputFunctionCall:
    return rp.OutputFunctionCall(id=item_id("fc"), call_id=call.id, name=call.name, arguments=call.arguments)


def item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def response_object(turn: Turn, status: str, output: list[rp.OutputItem] | None = None) -> rp.ResponseObject:
    """The response with the request's settings echoed (the SDK's models require them)."""
    req = turn.req
    incomplete = rp.IncompleteDetails(reason="max_output_tokens") if status == "incomplete" else None
    choice = req.tool_choice
    return rp.ResponseObject(
        id=turn.ident,
        created_at=turn.created,
        status=status,
        incomplete_details=incomplete,
        model=req.model,
        output=output or [],
        instructions=req.instructions,
        max_output_tokens=req.max_output_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        top_logprobs=req.top_logprobs or 0,
        tools=responses_input.echoed_tools(req),
        tool_choice=choice.model_dump() if isinstance(choice, rp.NamedChoice) else (choice or "auto"),
        parallel_tool_calls=req.parallel_tool_calls is not False,
        text=responses_input.echoed_text(req),
        previous_response_id=req.previous_response_id,
        store=req.stored,
        metadata=req.metadata or {},
        user=req.user,
        safety_identifier=req.safety_identifier,
        prompt_cache_key=req.prompt_cache_key,
    )


def logprobs(tokens: list[TokenLogprob] | None) -> list[rp.TokenLogprob]:
    """Our token log-probabilities in the Responses shape."""
    return [
        rp.TokenLogprob(
            token=t.token,
            logprob=t.logprob,
            bytes=t.bytes or list(t.token.encode()),
            top_logprobs=[
                rp.TopLogprob(token=o.token, logprob=o.logprob, bytes=o.bytes or []) for o in t.top
            ],
        )
        for t in tokens or ()
    ]
