"""The calls in a local model's answer, read as it streams (see tool_calls for the formats).

Plain text passes at once; text that could be the start of a call marker is held back until
it is clearly one or clearly not, and each call comes out whole in one chunk. A block whose
JSON does not parse, or names a function that is not among the tools, stays text: what the
model wrote is never lost. An answer that opens with a bare JSON object, or one in a ```json
fence, is read as a call too when it is one: small models (Qwen2.5-Coder-0.5B) often write
their call so, without the template's markers.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from modelatlas.backends.tool_calls import PYTHON_TAG, ToolFormat
from modelatlas.parts import ToolCall
from modelatlas.structured import choice_names
from modelatlas.types import Chunk, GenerationParams

__all__ = ["BlockParser", "JsonParser", "parse_stream", "parser_for", "read_call"]


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
    if start < 0:  # the answer was only the start of a fence, or whitespace
        return None, held
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
