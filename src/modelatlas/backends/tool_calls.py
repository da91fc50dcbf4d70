"""Tool calls of local models: which chat templates take tools, and the calls in the answer.

A chat template that takes tools says so by reading ``tools``; it also tells the model how to
write a call. Two ways are known here: Hermes' (Qwen2.5, Hermes, many fine-tunes), each call a
``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` block, several blocks for
parallel calls; and Llama 3.1's, the answer a bare JSON object ``{"name": ..., "parameters":
{...}}``. The template is read from the GGUF header, so a request is refused before any load.

:func:`parse_stream` turns a stream of text chunks into OpenAI's shape: plain text passes at
once, text that could be the start of a call is held back until it is clearly one or clearly
not, and each call comes out whole in one chunk. A block whose JSON does not parse, or names a
function that is not among the tools, stays text: what the model wrote is never lost.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from modelatlas.backends.gguf_header import read_keys
from modelatlas.errors import InvalidRequestError
from modelatlas.parts import ToolCall
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


def new_call(name: str, arguments: dict[str, Any]) -> ToolCall:
    """A call with a fresh OpenAI-style id and its arguments as JSON text."""
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=json.dumps(arguments))


def read_call(body: str, fmt: ToolFormat, names: tuple[str, ...]) -> ToolCall | None:
    """The call that ``body`` (the JSON between the markers) holds, or None if it is not a
    well-formed call of one of ``names``."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("name") not in names:
        return None
    arguments = data.get(fmt.arguments_key, data.get("arguments", {}))
    if isinstance(arguments, str):  # some models write the arguments as JSON text
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return new_call(data["name"], arguments)


class BlockParser:
    """Hermes-style calls in marked blocks, fed text piece by piece (see the module's note)."""

    def __init__(self, fmt: ToolFormat, names: tuple[str, ...], parallel: bool):
        self.fmt, self.names, self.parallel = fmt, names, parallel
        self.held = ""  # text not yet passed on: a possible marker, or a block being written
        self.inside = False
        self.calls = 0
        self.gap = ""  # trailing whitespace not passed on yet (see _text)
        # Whether the answer opens with a bare JSON object (or one in a ```json fence): small
        # models often write their call so, without the markers. None: too early to say.
        self.lead: bool | None = None

    def feed(self, text: str) -> tuple[str, list[ToolCall]]:
        """What can be passed on after ``text``: the plain text and the calls completed."""
        self.held += text
        if self.lead is None:
            self.lead = _leads_with_json(self.held)
        if self.lead is not False:
            return "", []  # perhaps a bare call: held to the end (or until it clearly is not)
        out: list[str] = []
        calls: list[ToolCall] = []
        while True:
            if self.inside:
                end = self.held.find(self.fmt.close)
                if end < 0:
                    break
                body, self.held = self.held[:end], self.held[end + len(self.fmt.close) :]
                self.inside = False
                self._close_block(body, out, calls)
                continue
            start = self.held.find(self.fmt.open)
            if start < 0:
                keep = _partial_suffix(self.held, self.fmt.open)
                self._text(self.held[: len(self.held) - keep], out)
                self.held = self.held[len(self.held) - keep :]
                break
            self._text(self.held[:start], out)
            self.gap = ""  # the newline a model writes before a block
            self.held, self.inside = self.held[start + len(self.fmt.open) :], True
        return "".join(out), calls

    def finish(self) -> tuple[str, list[ToolCall]]:
        """The rest at the end: an unclosed block is a call if its JSON is whole, else text."""
        out: list[str] = []
        calls: list[ToolCall] = []
        if self.lead is not False:
            held, self.held, self.lead = self.held, "", False
            call, rest = _bare_call(held, self.fmt, self.names)
            if call is not None:
                self.calls = 1
                return rest, [call]
            text, calls = self.feed(held)
            out.append(text)
        if self.inside:
            self.inside = False
            self._close_block(self.held, out, calls, closed=False)
        else:
            self._text(self.held, out)
        self.held = ""
        if not self.calls:
            out.append(self.gap)
        self.gap = ""
        return "".join(out), calls

    def _close_block(self, body: str, out: list[str], calls: list[ToolCall], closed: bool = True) -> None:
        call = read_call(body, self.fmt, self.names)
        if call is None:  # not a call after all: the model's words, as it wrote them
            self._text(self.fmt.open + body + (self.fmt.close if closed else ""), out)
            return
        self.calls += 1
        if self.calls == 1 or self.parallel:
            calls.append(call)

    def _text(self, text: str, out: list[str]) -> None:
        """Pass ``text`` on, all but its trailing whitespace: that waits for what follows (the
        newline before or after a call block is dropped, between words it is kept)."""
        words = text.rstrip()
        if words:
            out.append(self.gap + words)
            self.gap = text[len(words) :]
        else:
            self.gap += text


class JsonParser:
    """Llama 3.1-style: an answer that starts with ``{`` is held whole, then read as a call."""

    def __init__(self, fmt: ToolFormat, names: tuple[str, ...], parallel: bool):
        self.fmt, self.names = fmt, names
        self.held = ""
        self.plain = False  # the answer did not start as JSON: everything passes

    def feed(self, text: str) -> tuple[str, list[ToolCall]]:
        if self.plain:
            return text, []
        self.held += text
        start = self.held.lstrip()
        if not start or start.startswith(("{", PYTHON_TAG)) or PYTHON_TAG.startswith(start):
            return "", []  # may still be a call: wait for the end
        self.plain, text, self.held = True, self.held, ""
        return text, []

    def finish(self) -> tuple[str, list[ToolCall]]:
        body = self.held.strip().removeprefix(PYTHON_TAG)
        self.held = ""
        call = read_call(body, self.fmt, self.names) if body else None
        return ("", [call]) if call else (body, [])


_LEAD = re.compile(r"\s*(```(?:json)?\s*)?\{")
_LEAD_SO_FAR = re.compile(r"\s*(`{1,3}(j(s(on?)?)?)?\s*)?")


def _leads_with_json(held: str) -> bool | None:
    """Whether ``held``, the answer so far, opens with a JSON object (fenced or not); None
    while it could still."""
    if _LEAD.match(held):
        return True
    return None if _LEAD_SO_FAR.fullmatch(held) else False


def _bare_call(held: str, fmt: ToolFormat, names: tuple[str, ...]) -> tuple[ToolCall | None, str]:
    """The call a whole answer that opens with a JSON object holds, and the text after it
    (a closing fence dropped); no call if the object is not one."""
    start = held.find("{")
    try:
        data, end = json.JSONDecoder().raw_decode(held, start)
    except ValueError:
        return None, held
    call = read_call(json.dumps(data), fmt, names)
    rest = held[end:].strip()
    return call, rest.removeprefix("```").strip() if call else held


def _partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of ``text`` that is a start of ``marker``."""
    for n in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0


def parser_for(fmt: ToolFormat, params: GenerationParams) -> BlockParser | JsonParser:
    from modelatlas.structured import choice_names

    names = choice_names(params.tool_choice, params.tools)
    parallel = params.parallel_tool_calls and fmt.parallel
    return (BlockParser if fmt.open else JsonParser)(fmt, names, parallel)


async def parse_stream(
    chunks: AsyncIterator[Chunk], fmt: ToolFormat, params: GenerationParams
) -> AsyncIterator[Chunk]:
    """``chunks`` with the calls the model wrote taken out of the text, each in a chunk of its
    own; the last chunk's finish reason is "tool_calls" when any call came out."""
    parser = parser_for(fmt, params)
    called = False
    async for chunk in chunks:
        text, calls = parser.feed(chunk.text)
        if chunk.finish_reason is not None:
            rest, more = parser.finish()
            text, calls = text + rest, calls + more
        called = called or bool(calls)
        if text or calls or chunk.logprobs:
            yield Chunk(text=text, tool_calls=tuple(calls), logprobs=chunk.logprobs)
        if chunk.finish_reason is None:
            continue
        ended = chunk.finish_reason in ("stop", "length")
        finish = "tool_calls" if called and ended else chunk.finish_reason
        yield chunk.model_copy(update={"finish_reason": finish, "text": "", "logprobs": None})
        return


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
