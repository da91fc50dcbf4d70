"""Tool calls of local models: which chat templates take tools, and the calls in the answer.

A chat template that takes tools says so by reading ``tools``; it also tells the model how to
write a call. Two ways are known here: Hermes' (Qwen2.5, Hermes, many fine-tunes), each call a
``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` block, several blocks for
parallel calls; and Llama 3.1's, the answer a bare JSON object ``{"name": ..., "parameters":
{...}}``. The template is read from the GGUF header, so a request is refused before any load.

:func:`parse_stream` (in tool_parse) turns a stream of text chunks into OpenAI's shape, each
call whole in one chunk; :func:`grammar_for` (in tool_grammar) forces a call where one must be
made; :func:`check_tools` refuses tools for a template that has none, with a 400 naming them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from modelatlas.backends.gguf_header import read_keys
from modelatlas.errors import InvalidRequestError
from modelatlas.types import Chunk, GenerationParams

__all__ = [
    "HERMES",
    "LLAMA_JSON",
    "ToolFormat",
    "chat_template",
    "check_tools",
    "format_of",
    "grammar_for",
    "parse_stream",
    "rendered_tools",
    "template_format",
    "template_messages",
]


@dataclass(frozen=True)
class ToolFormat:
    """How a template has the model write a call: in ``open``/``close`` markers (empty for a
    bare JSON answer), with its arguments under ``arguments_key``; ``parallel``: several."""

    name: str
    open: str
    close: str
    arguments_key: str
    parallel: bool


HERMES = ToolFormat("hermes", "<tool_call>", "</tool_call>", "arguments", parallel=True)
LLAMA_JSON = ToolFormat("llama3-json", "", "", "parameters", parallel=False)
PYTHON_TAG = "<|python_tag|>"  # what Llama 3.1 may write before a call


def format_of(template: str | None) -> ToolFormat | None:
    """The call format a chat template asks for; None when it renders no tools, or asks for
    a format not known here (refused rather than guessed)."""
    if not reads_tools(template):
        return None
    assert template is not None
    if "<tool_call>" in template:
        return HERMES
    if '"parameters"' in template:
        return LLAMA_JSON
    return None


def reads_tools(template: str | None) -> bool:
    """Whether a chat template renders the ``tools`` it is given."""
    return bool(template) and "tools" in str(template)


@functools.lru_cache(maxsize=64)
def chat_template(path: str) -> str | None:
    """The chat template in the GGUF file at ``path``, read from its header (no model load)."""
    template = read_keys(path, ["tokenizer.chat_template"]).get("tokenizer.chat_template")
    return template if isinstance(template, str) else None


def template_format(path: str) -> ToolFormat | None:
    """The call format of the chat template in the GGUF file at ``path``."""
    return format_of(chat_template(path))


def rendered_tools(params: GenerationParams) -> list[dict[str, Any]] | None:
    """The tools to render into the prompt in OpenAI's shape; none when "none" is the choice
    (the model is not to call one, so it is not told of them)."""
    if not params.tools or params.tool_choice == "none":
        return None
    return [tool.openai() for tool in params.tools]


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as chat templates read them: each earlier call's arguments as the object, not
    its JSON text (Qwen's and Llama's templates write ``arguments | tojson``: text would be
    quoted twice). Arguments that do not parse stay text."""
    out = []
    for message in messages:
        calls = message.get("tool_calls")
        if calls:
            message = {**message, "tool_calls": [_parsed_call(call) for call in calls]}
        out.append(message)
    return out


def _parsed_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return call
    return {**call, "function": {**function, "arguments": arguments}}


def parse_stream(
    chunks: AsyncIterator[Chunk], fmt: ToolFormat, params: GenerationParams
) -> AsyncIterator[Chunk]:
    """``chunks`` with the calls the model wrote taken out of the text, each in a chunk of its
    own; the last chunk's finish reason is "tool_calls" when any call came out (tool_parse)."""
    from modelatlas.backends import tool_parse

    return tool_parse.parse_stream(chunks, fmt, params)


def grammar_for(params: GenerationParams, fmt: ToolFormat = HERMES) -> str | None:
    """The grammar forcing a well-formed call when ``tool_choice`` demands one (see
    tool_grammar); None when the model may answer freely."""
    from modelatlas.backends import tool_grammar

    return tool_grammar.grammar_for(params, fmt)


def check_tools(model_id: str, path: str, params: GenerationParams) -> ToolFormat | None:
    """The call format to parse the answer with; None when no tools are to be used. A request
    with tools for a model whose template cannot take them is a 400 naming ``tools``."""
    if not params.tools or params.tool_choice == "none":
        return None
    template = chat_template(path)
    fmt = format_of(template)
    if fmt is not None:
        return fmt
    why = (
        "renders tools in a way modelatlas cannot parse the calls of"
        if reads_tools(template)
        else "has no tool support"
    )
    raise InvalidRequestError(
        f"'tools' cannot be used with {model_id}: its chat template {why}, so the model "
        "would never see the tools or its calls would be lost.",
        hint="Use a model whose chat template takes tools (local/qwen2.5-coder-0.5b-instruct, or a "
        "hosted model), leave 'tools' out, or send tool_choice 'none'.",
        param="tools",
    )
