"""A prompt in OpenAI's chat message shape, what the openai SDK sends and chat templates read.

Text stays a string: every chat template (llama.cpp's, transformers') and every
OpenAI-compatible server takes one, and a message whose parts are all text is sent as their
joined text, exactly as a plain string message. Other parts become OpenAI's content parts: an
image an ``image_url`` (bytes and files as a ``data:`` URL, a URL as the user gave it: passed
on, never fetched here), a sound an ``input_audio`` (base64 and its format). Tool calls and
tool results take OpenAI's shape.

A path part is read here; a prompt with one should be converted off the event loop
(:func:`reads_files` says whether it has one).
"""

from __future__ import annotations

import base64
from typing import Any

from modelatlas.errors import InvalidRequestError
from modelatlas.parts import AudioPart, ImagePart, Part, TextPart, ToolCall, data_url
from modelatlas.types import Message, Prompt

__all__ = ["as_messages", "check_parts", "reads_files"]

_TEXT = frozenset({"text"})


def as_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """A prompt as OpenAI-style message dicts (a plain string becomes one user message)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [_message(m) for m in prompt]


def reads_files(prompt: Prompt) -> bool:
    """Whether converting ``prompt`` reads a file (a part given by path)."""
    if isinstance(prompt, str):
        return False
    return any(
        isinstance(part, ImagePart | AudioPart) and part.path is not None
        for message in prompt
        if not isinstance(message.content, str)
        for part in message.content
    )


def _message(message: Message) -> dict[str, Any]:
    text_only = message.kinds <= _TEXT
    content: str | list[dict[str, Any]] = (
        message.text if text_only else [_part(part) for part in message.parts]
    )
    data: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        # Empty text, not null, beside calls when the model said nothing else: OpenAI takes
        # both, and a chat template renders a null content as the word "None".
        data["tool_calls"] = [_tool_call(call) for call in message.tool_calls]
    if message.tool_call_id is not None:
        data["tool_call_id"] = message.tool_call_id
    return data


def _part(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        url = part.url if part.url is not None else data_url(part.media(), part.read())
        return {"type": "image_url", "image_url": {"url": url}}
    data = base64.b64encode(part.read()).decode("ascii")
    return {"type": "input_audio", "input_audio": {"data": data, "format": part.audio_format()}}


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


_NAMES = {"text": "text", "image": "images", "audio": "audio"}


def check_parts(model_id: str, accepts: frozenset[str], prompt: Prompt) -> None:
    """Refuse a prompt holding a part kind the model does not take, naming what it does take.

    Called by the Model wrapper before any cache look-up, log entry or backend call: a text-only
    chat template would otherwise drop the image silently and answer about nothing."""
    if isinstance(prompt, str):
        return
    for i, message in enumerate(prompt):
        refused = sorted(message.kinds - accepts)
        if refused:
            takes = ", ".join(sorted(accepts)) or "nothing"
            raise InvalidRequestError(
                f"{model_id} does not take {' or '.join(_NAMES.get(k, k) for k in refused)}: "
                f"messages[{i}] holds {' and '.join(f'a {k} part' for k in refused)}. "
                f"It accepts: {takes}.",
                hint="Send only the part kinds it accepts, or pick a model that takes them "
                "(a hosted model through the openai backend takes images and audio).",
                param=f"messages[{i}]",
            )
