"""What a Responses request asks, in our terms: its refusals, its conversation as Messages and
its settings as GenerationParams (the same value types the chat route hands the Model).

``check`` runs once the request is admitted, so a refusal is metered as the 400 it answers,
as chat's checks are. Each refusal names the parameter and says what to send instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from modelatlas.errors import InvalidRequestError
from modelatlas.parts import ImagePart, Part, TextPart, ToolCall
from modelatlas.serve import responses_protocol as rp
from modelatlas.structured import ResponseFormat, Tool
from modelatlas.types import GenerationParams, Message, Role

LOGPROBS = "message.output_text.logprobs"  # the ``include`` value this server fills in
# Asked for by clients that keep no state (inspect_ai sends it with store false): the models
# here write no reasoning items, so there is never encrypted reasoning to include.
NO_REASONING = "reasoning.encrypted_content"
_ROLES: dict[str, Role] = {
    "developer": "system",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
}
_MAX_METADATA = 16

# Every field of OpenAI's Responses request (the openai SDK's ResponseCreateParams): honoured,
# or refused with a 400 naming it once set. tests/test_serve_responses.py checks this covers the
# SDK's. user, safety_identifier and the prompt-cache hints never change an answer: accepted
# and echoed, as on the chat route (llama.cpp reuses a shared prompt prefix whatever they say).
PARAMETERS: dict[str, str] = {
    "model": "honoured",
    "input": "honoured",
    "instructions": "honoured",
    "max_output_tokens": "honoured",
    "temperature": "honoured",
    "top_p": "honoured",
    "tools": "honoured",
    "tool_choice": "honoured",
    "parallel_tool_calls": "honoured",
    "text": "honoured",
    "stream": "honoured",
    "stream_options": "honoured",
    "store": "honoured",
    "previous_response_id": "honoured",
    "include": "honoured",
    "top_logprobs": "honoured",
    "metadata": "honoured",
    "user": "honoured",
    "safety_identifier": "honoured",
    "prompt_cache_key": "honoured",
    "prompt_cache_retention": "honoured",
    "prompt_cache_options": "honoured",
    "truncation": "honoured",
    "service_tier": "honoured",
    "background": "refused",
    "reasoning": "refused",
    "max_tool_calls": "refused",
    "conversation": "refused",
    "prompt": "refused",
    "context_management": "refused",
    "moderation": "refused",
    "image": "refused",
    "access_programs": "refused",
    "background_options": "refused",
}

# Fields this server cannot honour when they are set: (field, why, what to do instead).
_UNSUPPORTED = [
    (
        "conversation",
        "this server keeps no conversation objects",
        "Send the earlier turns in 'input', or pass 'previous_response_id'.",
    ),
    (
        "prompt",
        "this server has no stored prompt templates",
        "Send the prompt's text in 'instructions' and 'input'.",
    ),
    (
        "context_management",
        "this server does not compact conversations",
        "Leave it out and send fewer turns.",
    ),
    ("moderation", "this server runs no moderation model", "Leave it out."),
    ("image", "this endpoint does not make images", "Call /v1/images/generations (client.images.generate)."),
    ("access_programs", "this server has no access programs", "Leave it out."),
    ("background_options", "this server answers no request in the background", "Leave it out."),
    ("max_tool_calls", "it limits OpenAI's built-in tools, which this server does not run", "Leave it out."),
]


def _refused(message: str, param: str, hint: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(message, hint=hint, param=param)


def check(req: rp.ResponsesRequest) -> None:
    """Refuse what this server cannot do, naming the parameter (never a silent 200)."""
    req.check()  # text that is not valid Unicode
    for name, why, hint in _UNSUPPORTED:
        if getattr(req, name) is not None:
            raise _refused(f"'{name}' is not supported: {why}.", name, hint)
    _check_modes(req)
    _check_reasoning(req.reasoning)
    _check_include(req)
    _check_metadata(req.metadata)
    _check_tools(req)
    if isinstance(req.input, list):
        for i, item in enumerate(req.input):
            _check_item(item, f"input[{i}]")


def _check_modes(req: rp.ResponsesRequest) -> None:
    if req.background:
        raise _refused(
            "'background' responses are not supported: this server answers while the request is open.",
            "background",
            "Leave 'background' out; stream with stream=true to see the answer as it is written.",
        )
    if req.truncation == "auto":
        raise _refused(
            "'truncation' 'auto' is not supported: a conversation longer than the model's context "
            "is refused, not cut.",
            "truncation",
            "Leave it out (or send 'disabled') and send fewer turns.",
        )
    if req.service_tier in ("flex", "scale", "priority"):
        raise _refused(
            f"'service_tier' {req.service_tier!r} is not supported: this server has one tier.",
            "service_tier",
            "Leave it out, or send 'auto' or 'default'.",
        )
    if req.text and req.text.verbosity in ("low", "high"):
        raise _refused(
            f"'text.verbosity' {req.text.verbosity!r} is not supported: these models have no "
            "verbosity setting.",
            "text.verbosity",
            "Leave it out (or send 'medium'); set max_output_tokens to bound the answer's length.",
        )


def _check_reasoning(reasoning: dict[str, Any] | None) -> None:
    if reasoning and any(value is not None for value in reasoning.values()):
        raise _refused(
            "'reasoning' is not supported: the models this server runs have no reasoning settings.",
            "reasoning",
            "Leave 'reasoning' out.",
        )


def _check_include(req: rp.ResponsesRequest) -> None:
    for i, value in enumerate(req.include or ()):
        if value not in (LOGPROBS, NO_REASONING):
            raise _refused(
                f"'include[{i}]': {value!r} is not supported; this server can include only "
                f"{LOGPROBS!r} (and {NO_REASONING!r}, which is always empty here).",
                f"include[{i}]",
                "Leave the value out.",
            )
    if req.top_logprobs and LOGPROBS not in (req.include or ()):
        raise _refused(
            f"'top_logprobs' needs 'include' to hold {LOGPROBS!r}: the log-probabilities are sent only then.",
            "top_logprobs",
            f"Add {LOGPROBS!r} to 'include', or leave 'top_logprobs' out.",
        )


def _check_metadata(metadata: dict[str, str] | None) -> None:
    if metadata is None:
        return
    if len(metadata) > _MAX_METADATA:
        raise _refused(
            f"'metadata' has {len(metadata)} pairs; at most {_MAX_METADATA} are allowed.", "metadata"
        )
    for key, value in metadata.items():
        if len(key) > 64 or len(value) > 512:
            raise _refused(
                f"'metadata.{key[:64]}': keys are at most 64 characters, values at most 512.",
                f"metadata.{key[:64]}",
            )


def _check_tools(req: rp.ResponsesRequest) -> None:
    for i, tool in enumerate(req.tools or ()):
        if isinstance(tool, rp.OtherTool):
            raise _refused(
                f"'tools[{i}]': tools of type {tool.type!r} are not supported; this server runs "
                "only your own functions (type 'function').",
                f"tools[{i}].type",
                "Leave the built-in tool out, or describe it as a function your code runs.",
            )
    choice = req.tool_choice
    if isinstance(choice, rp.OtherChoice):
        raise _refused(
            f"'tool_choice' of type {choice.type!r} is not supported; send 'auto', 'none', "
            "'required' or {'type': 'function', 'name': ...}.",
            "tool_choice",
        )
    names = [tool.name for tool in req.function_tools]
    if isinstance(choice, rp.NamedChoice) and choice.name not in names:
        raise _refused(
            f"'tool_choice' names the function {choice.name!r}, which is not among the tools "
            f"({', '.join(names) or 'none'}).",
            "tool_choice.name",
        )
    if choice == "required" and not names:
        raise _refused("'tool_choice' 'required' needs at least one function in 'tools'.", "tool_choice")


def _check_item(item: Any, where: str) -> None:
    if isinstance(item, rp.OtherItem):
        raise _refused(
            f"'{where}': input items of type {item.type!r} are not supported; send messages, "
            "'function_call' and 'function_call_output' items.",
            f"{where}.type",
        )
    content = item.content if isinstance(item, rp.MessageItem) else getattr(item, "output", None)
    for j, part in enumerate(content if isinstance(content, list) else ()):
        _check_part(part, f"{where}.{'content' if isinstance(item, rp.MessageItem) else 'output'}[{j}]")


def _check_part(part: Any, where: str) -> None:
    if isinstance(part, rp.OtherPart):
        raise _refused(
            f"'{where}': content parts of type {part.type!r} are not supported; send "
            "'input_text', 'output_text' or 'input_image' parts.",
            f"{where}.type",
        )
    if isinstance(part, rp.InputImage):
        if part.file_id is not None:
            raise _refused(
                f"'{where}.file_id': this server has no Files API.",
                f"{where}.file_id",
                "Send the image as image_url: data:image/png;base64,<bytes>.",
            )
        if not part.image_url:
            raise _refused(f"Missing required parameter: '{where}.image_url'.", f"{where}.image_url")


# -- the conversation ----------------------------------------------------------------------------


def turn_messages(req: rp.ResponsesRequest) -> list[Message]:
    """The request's input as Messages: a text is one user message; a function_call item joins
    the assistant message before it (several calls of one turn are one message, as chat
    templates expect them); a function_call_output is a tool message."""
    if isinstance(req.input, str):
        return [Message.user(req.input)]
    messages: list[Message] = []
    for i, item in enumerate(req.input):
        where = f"input[{i}]"
        if isinstance(item, rp.MessageItem):
            messages.append(
                Message(role=_ROLES[item.role], content=_content(item.content, f"{where}.content"))
            )
        elif isinstance(item, rp.FunctionCallItem):
            call = ToolCall(id=item.call_id, name=item.name, arguments=item.arguments)
            if messages and messages[-1].role == "assistant":
                last = messages.pop()
                messages.append(last.model_copy(update={"tool_calls": (*last.tool_calls, call)}))
            else:
                messages.append(Message(role="assistant", content="", tool_calls=(call,)))
        elif isinstance(item, rp.FunctionCallOutputItem):
            text = _content(item.output, f"{where}.output")
            if not isinstance(text, str):
                raise _refused(f"'{where}.output': a function's output must be text.", f"{where}.output")
            messages.append(Message(role="tool", content=text, tool_call_id=item.call_id))
    return messages


def _content(content: str | list[Any], where: str) -> str | list[Part]:
    """Text parts joined into one string (what text models take, as chat's content does), or
    typed parts when there is an image among them."""
    if isinstance(content, str):
        return content
    if all(not isinstance(part, rp.InputImage) for part in content):
        return "".join(_text(part) for part in content)
    return [_part(part, f"{where}[{j}]") for j, part in enumerate(content)]


def _text(part: Any) -> str:
    return part.refusal if isinstance(part, rp.Refusal) else part.text


def _part(part: Any, where: str) -> Part:
    if not isinstance(part, rp.InputImage):
        return TextPart(text=_text(part))
    try:
        return ImagePart.from_url(part.image_url or "")
    except ValueError as exc:
        raise _refused(
            f"'{where}.image_url': {exc}.",
            f"{where}.image_url",
            "Send the bytes base64-encoded, as data:image/png;base64,<bytes>.",
        ) from None


# -- the settings --------------------------------------------------------------------------------


def generation_params(req: rp.ResponsesRequest, max_tokens: int) -> GenerationParams:
    """The request's settings as GenerationParams; the Model's backend honours each or refuses
    it with a 400 naming it (Backend.check_params)."""
    tools = tuple(
        _tool(tool, i) for i, tool in enumerate(req.tools or ()) if isinstance(tool, rp.FunctionTool)
    )
    choice = req.tool_choice
    return GenerationParams(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        seed=None,
        logprobs=(req.top_logprobs or 0) if LOGPROBS in (req.include or ()) else None,
        tools=tools,
        tool_choice=choice.name if isinstance(choice, rp.NamedChoice) else (choice or "auto"),
        parallel_tool_calls=req.parallel_tool_calls is not False,
        response_format=response_format(req.text_format),
    )


def _tool(tool: rp.FunctionTool, i: int) -> Tool:
    fields: dict[str, Any] = {"name": tool.name, "description": tool.description or ""}
    if tool.parameters is not None:
        fields["parameters"] = tool.parameters
    fields["strict"] = tool.strict is not False  # the Responses API's default is strict
    try:
        return Tool(**fields)
    except ValidationError:
        raise _refused(
            f"'tools[{i}].name' {tool.name!r} is not a valid function name: use letters, digits, "
            "'_' and '-', at most 64 characters.",
            f"tools[{i}].name",
        ) from None


def response_format(fmt: rp.TextFormat) -> ResponseFormat | None:
    if fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return ResponseFormat(type="json_object")
    if fmt.json_schema is None:
        raise _refused("Missing required parameter: 'text.format.schema'.", "text.format.schema")
    name = fmt.name or "response"
    return ResponseFormat(type="json_schema", json_schema=fmt.json_schema, name=name, strict=bool(fmt.strict))


def echoed_tools(req: rp.ResponsesRequest) -> list[dict[str, Any]]:
    """The tools as the response object repeats them (strict filled in as it was applied)."""
    return [{**tool.model_dump(), "strict": tool.strict is not False} for tool in req.function_tools]


def echoed_text(req: rp.ResponsesRequest) -> dict[str, Any]:
    fmt = req.text_format.model_dump(by_alias=True, exclude_none=True)
    return {"format": fmt, "verbosity": "medium"}
