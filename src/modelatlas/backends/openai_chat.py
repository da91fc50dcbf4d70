"""What the openai backend sends beyond plain sampling, and reads back beyond text.

The request fields are OpenAI's own (tools, tool_choice, parallel_tool_calls, response_format,
the penalties, logit_bias, logprobs/top_logprobs), passed on as they are: the hosted model, or
the OpenAI-compatible server, honours them or answers its own 400. Back come the tool calls
(whole, or streamed as fragments of their arguments, assembled here by index and passed on
whole once complete) and each token's log-probability, in modelatlas' types.

A plain-string prompt goes to the legacy completions endpoint, which has no tools and no
response format: asking for them there is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from modelatlas.errors import InvalidRequestError
from modelatlas.parts import ToolCall
from modelatlas.structured import ResponseFormat, TokenLogprob, TopToken
from modelatlas.types import GenerationParams

__all__ = ["HONOURED", "CallAssembler", "chat_fields", "completion_fields", "logprobs_of", "tool_calls_of"]

# GenerationParams fields the backend passes on (see Backend.honours).
HONOURED = frozenset(
    {
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    }
)


def chat_fields(params: GenerationParams) -> dict[str, Any]:
    """``chat.completions.create``'s arguments for the fields asked beyond plain sampling."""
    args = _sampling_fields(params)
    if params.logprobs is not None:
        args.update(logprobs=True, top_logprobs=params.logprobs)
    if params.tools:
        args["tools"] = [tool.openai() for tool in params.tools]
        args["tool_choice"] = _tool_choice(params.tool_choice)
        if not params.parallel_tool_calls:
            args["parallel_tool_calls"] = False
    if params.response_format is not None:
        args["response_format"] = _response_format(params.response_format)
    return args


def completion_fields(params: GenerationParams) -> dict[str, Any]:
    """The legacy ``completions.create``'s arguments: no tools, no response format there."""
    for name in ("tools", "response_format"):
        if getattr(params, name):
            raise InvalidRequestError(
                f"'{name}' needs chat messages: the completions endpoint a plain prompt goes to has none.",
                hint="Send the prompt as messages (chat), or leave the field out.",
                param=name,
            )
    args = _sampling_fields(params)
    if params.logprobs is not None:
        args["logprobs"] = params.logprobs
    return args


def _sampling_fields(params: GenerationParams) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if params.presence_penalty:
        args["presence_penalty"] = params.presence_penalty
    if params.frequency_penalty:
        args["frequency_penalty"] = params.frequency_penalty
    if params.logit_bias:
        args["logit_bias"] = {str(token): bias for token, bias in params.logit_bias}
    return args


def _tool_choice(choice: str) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    schema: dict[str, Any] = {"name": fmt.name, "schema": fmt.json_schema or {"type": "object"}}
    if fmt.strict:
        schema["strict"] = True
    return {"type": "json_schema", "json_schema": schema}


def tool_calls_of(message: Any) -> tuple[ToolCall, ...]:
    """The calls on an SDK chat message (function calls only; other kinds have no name)."""
    calls = getattr(message, "tool_calls", None) or []
    return tuple(
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments or "{}")
        for call in calls
        if getattr(call, "function", None) is not None
    )


def logprobs_of(logprobs: Any) -> list[TokenLogprob] | None:
    """A choice's log-probabilities as TokenLogprobs: chat's ``content`` entries, or the legacy
    completions' parallel lists. None where the server sent none."""
    if logprobs is None:
        return None
    content = getattr(logprobs, "content", None)
    if content is not None:
        return [
            TokenLogprob(
                token=item.token,
                logprob=item.logprob,
                bytes=item.bytes,
                top=[
                    TopToken(token=t.token, logprob=t.logprob, bytes=t.bytes) for t in item.top_logprobs or []
                ],
            )
            for item in content
        ]
    tokens = getattr(logprobs, "tokens", None)
    if tokens is None:
        return None
    values = logprobs.token_logprobs or []
    tops = logprobs.top_logprobs or [None] * len(tokens)
    return [
        TokenLogprob(
            token=token,
            logprob=value if value is not None else 0.0,
            top=[TopToken(token=t, logprob=v) for t, v in (top or {}).items()],
        )
        for token, value, top in zip(tokens, values, tops, strict=False)
    ]


def _top(item: Any) -> TopToken:
    return TopToken(token=item.token, logprob=item.logprob, bytes=item.bytes)


class CallAssembler:
    """Streamed tool calls put back together: OpenAI sends each call's id and name first, then
    its arguments in fragments, all under the call's ``index``. A call is passed on whole when
    the next one starts or the choice finishes."""

    def __init__(self) -> None:
        self.parts: dict[int, dict[str, str]] = {}
        self.done: set[int] = set()

    def add(self, deltas: Any) -> list[ToolCall]:
        """Take a delta's ``tool_calls``; the calls that are now complete."""
        ready: list[ToolCall] = []
        for delta in deltas or []:
            index = delta.index
            if index not in self.parts:
                ready += self._finish(below=index)  # a new call: those before it are whole
                self.parts[index] = {"id": "", "name": "", "arguments": ""}
            part = self.parts[index]
            part["id"] = delta.id or part["id"]
            function = getattr(delta, "function", None)
            if function is not None:
                part["name"] += function.name or ""
                part["arguments"] += function.arguments or ""
        return ready

    def finish(self) -> list[ToolCall]:
        """The calls not passed on yet, at the end of the choice."""
        return self._finish()

    def _finish(self, below: int | None = None) -> list[ToolCall]:
        ready = []
        for index in sorted(self.parts):
            if index in self.done or (below is not None and index >= below):
                continue
            self.done.add(index)
            part = self.parts[index]
            ready.append(ToolCall(id=part["id"], name=part["name"], arguments=part["arguments"] or "{}"))
        return ready
