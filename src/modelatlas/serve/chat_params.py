"""OpenAI's chat parameters: which are honoured and which refused, and the GenerationParams a
chat request asks for.

No parameter OpenAI defines is ignored in silence: each is in ``PARAMETERS``, and one we cannot
honour is a 400 naming it as soon as it is set to anything but its default. Whether the model
in hand honours a setting (``logprobs``, ``tools``...) is its backend's to say
(``Backend.check_params``); this module only turns the wire format into our value types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from modelatlas.errors import InvalidRequestError
from modelatlas.serve.protocol import ChatCompletionRequest, NamedToolChoice
from modelatlas.structured import ResponseFormat, Tool
from modelatlas.types import GenerationParams

MAX_STOPS = 4  # OpenAI's limit on stop sequences

# Every parameter of OpenAI's chat request (the openai SDK's CompletionCreateParams): honoured,
# or refused with a 400 naming it. tests/test_serve_chat_params.py checks this covers the SDK's.
PARAMETERS: dict[str, str] = {
    "messages": "honoured",
    "model": "honoured",
    "max_tokens": "honoured",
    "max_completion_tokens": "honoured",
    "temperature": "honoured",
    "top_p": "honoured",
    "stop": "honoured",
    "seed": "honoured",
    "stream": "honoured",
    "stream_options": "honoured",
    "n": "honoured",
    "logprobs": "honoured",
    "top_logprobs": "honoured",
    "presence_penalty": "honoured",
    "frequency_penalty": "honoured",
    "logit_bias": "honoured",
    "tools": "honoured",
    "tool_choice": "honoured",
    "parallel_tool_calls": "honoured",
    "response_format": "honoured",
    # user and safety_identifier: OpenAI defines them as an end user's identifier for abuse
    # monitoring; they never change an answer. The access line of the request records it
    # (safety_identifier first), beside the key.
    "user": "honoured",
    "safety_identifier": "honoured",
    # Prompt-cache hints route a request to a cache and set how long it lives; they never change
    # an answer. llama.cpp reuses the prefix its previous prompt shares with the next one
    # whatever they say, so they are accepted (refusing them would break clients that always
    # send a cache key).
    "prompt_cache_key": "honoured",
    "prompt_cache_retention": "honoured",
    "prompt_cache_options": "honoured",
    "functions": "refused",
    "function_call": "refused",
    "audio": "refused",
    "modalities": "refused",
    "prediction": "refused",
    "web_search_options": "refused",
    "reasoning_effort": "refused",
    "verbosity": "refused",
    "service_tier": "refused",
    "store": "refused",
    "metadata": "refused",
    "moderation": "refused",
}


def _unset(value: Any) -> bool:
    return value is None


# A refused parameter's accepted values (its defaults), and why any other is refused.
_REFUSALS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "functions": (_unset, "is deprecated and not supported here: send 'tools' instead"),
    "function_call": (_unset, "is deprecated and not supported here: send 'tool_choice' instead"),
    "audio": (_unset, "is not supported: these models write text only"),
    "modalities": (lambda v: v in (None, ["text"]), 'is not supported beyond ["text"]'),
    "prediction": (_unset, "(predicted outputs) is not supported"),
    "web_search_options": (_unset, "is not supported: the models here do not search the web"),
    "reasoning_effort": (_unset, "is not supported: the models here do not reason before answering"),
    "verbosity": (lambda v: v in (None, "medium"), "is not supported beyond its default 'medium'"),
    "service_tier": (
        lambda v: v in (None, "auto", "default"),
        "is not supported beyond 'auto' and 'default'",
    ),
    "store": (lambda v: not v, "true is not supported: this server does not store completions"),
    "metadata": (lambda v: not v, "is not supported: this server does not store completions to tag"),
    "moderation": (_unset, "is not supported: this server runs no moderation model"),
}


def check(req: ChatCompletionRequest) -> None:
    """Refuse what cannot be honoured, or is inconsistent, naming the parameter."""
    for name, (accepted, why) in _REFUSALS.items():
        if not accepted(getattr(req, name)):
            raise InvalidRequestError(f"'{name}' {why}.", hint=f"Leave '{name}' out.", param=name)
    if isinstance(req.stop, list) and len(req.stop) > MAX_STOPS:
        raise InvalidRequestError(
            f"'stop' holds {len(req.stop)} sequences; at most {MAX_STOPS} are allowed.", param="stop"
        )
    if req.top_logprobs is not None and not req.logprobs:
        raise InvalidRequestError(
            "'top_logprobs' needs 'logprobs' set to true.",
            hint="Send logprobs: true too.",
            param="top_logprobs",
        )
    if req.response_format is not None:
        _check_format(req)
    _check_tool_choice(req)


def _check_format(req: ChatCompletionRequest) -> None:
    fmt = req.response_format
    assert fmt is not None
    if fmt.type == "json_schema" and (fmt.json_schema is None or fmt.json_schema.json_schema is None):
        raise InvalidRequestError(
            "'response_format' of type json_schema needs 'json_schema' with a 'schema'.",
            hint='Send {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}.',
            param="response_format.json_schema",
        )


def _check_tool_choice(req: ChatCompletionRequest) -> None:
    names = [tool.function.name for tool in req.tools or []]
    choice = req.tool_choice
    if choice == "required" and not names:
        raise InvalidRequestError(
            "'tool_choice' is 'required' but the request has no 'tools'.", param="tool_choice"
        )
    if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
        known = ", ".join(names) or "none"
        raise InvalidRequestError(
            f"'tool_choice' names the function {choice.function.name!r}, which is not among "
            f"the tools ({known}).",
            hint="Name one of the functions in 'tools'.",
            param="tool_choice",
        )


def generation_params(req: ChatCompletionRequest, max_tokens: int) -> GenerationParams:
    """The GenerationParams of one choice (``check`` has passed)."""
    tools = tools_of(req)
    try:
        return GenerationParams(
            max_tokens=max_tokens,
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            stop=req.stops(),
            seed=req.seed,
            presence_penalty=req.presence_penalty or 0.0,
            frequency_penalty=req.frequency_penalty or 0.0,
            logit_bias=_logit_bias(req.logit_bias),
            logprobs=(req.top_logprobs or 0) if req.logprobs else None,
            tools=tools,
            tool_choice=_tool_choice(req) if tools else "auto",
            parallel_tool_calls=req.parallel_tool_calls is not False,
            response_format=_response_format(req),
        )
    except ValidationError as exc:  # what check did not foresee: still a 400 naming the field
        error = exc.errors()[0]
        param = str(error["loc"][0]) if error.get("loc") else None
        raise InvalidRequestError(f"Invalid value for '{param}': {error['msg']}.", param=param) from None


def tools_of(req: Any) -> tuple[Tool, ...]:
    """The request's ``tools`` (a list of ToolDef) as Tools; a bad name is a 400 naming it."""
    tools = []
    for i, item in enumerate(req.tools or []):
        function = item.function
        try:
            tools.append(
                Tool(
                    name=function.name,
                    description=function.description or "",
                    parameters=function.parameters or {"type": "object", "properties": {}},
                    strict=bool(function.strict),
                )
            )
        except ValidationError:
            raise InvalidRequestError(
                f"'tools[{i}].function.name' is {function.name!r}: a function's name is 1 to 64 "
                "letters, digits, underscores or dashes.",
                param=f"tools[{i}].function.name",
            ) from None
    names = [tool.name for tool in tools]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InvalidRequestError(
                f"'tools[{i}]' repeats the function name {name!r}.", param=f"tools[{i}].function.name"
            )
    return tuple(tools)


def _tool_choice(req: ChatCompletionRequest) -> str:
    choice = req.tool_choice
    if isinstance(choice, NamedToolChoice):
        return choice.function.name
    return choice or "auto"


def _logit_bias(bias: dict[str, float] | None) -> tuple[tuple[int, float], ...]:
    """OpenAI's {"token id": bias} as (token id, bias) pairs, each checked."""
    pairs = []
    for key, value in (bias or {}).items():
        if not key.isdigit():
            raise InvalidRequestError(
                f"'logit_bias' has the key {key!r}: keys are token ids (non-negative integers as strings).",
                param="logit_bias",
            )
        if not -100.0 <= value <= 100.0:
            raise InvalidRequestError(
                f"'logit_bias' gives token {key} the bias {value}; a bias is from -100 to 100.",
                param="logit_bias",
            )
        pairs.append((int(key), float(value)))
    return tuple(sorted(pairs))


def _response_format(req: ChatCompletionRequest) -> ResponseFormat | None:
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return ResponseFormat(type="json_object")
    spec = fmt.json_schema
    assert spec is not None
    return ResponseFormat(
        type="json_schema", json_schema=spec.json_schema, name=spec.name, strict=bool(spec.strict)
    )
