"""A chat request's messages, in OpenAI's wire shapes, as our Messages with typed parts.

A message whose content is text, or only text parts, becomes a plain string (the parts joined):
what text models take, with the same cache keys as before parts existed. Other parts become our
image and audio parts: a ``data:`` URL its bytes, any other URL kept as the client gave it (never
fetched here). Whether the model takes them is the Model's check, which answers a 400 naming
what it accepts. A part that cannot be read (bytes that are not base64) is a 400 naming it.
"""

from __future__ import annotations

from pydantic import ValidationError

from modelatlas.errors import InvalidRequestError
from modelatlas.parts import AudioPart, ImagePart, Part, TextPart, ToolCall
from modelatlas.serve import protocol
from modelatlas.types import Message, Role

__all__ = ["to_messages"]

_ROLES: dict[str, Role] = {
    "developer": "system",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}


def to_messages(messages: list[protocol.ChatMessage]) -> list[Message]:
    return [_message(message, f"messages[{i}]") for i, message in enumerate(messages)]


def _message(message: protocol.ChatMessage, where: str) -> Message:
    calls = tuple(
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
        for call in message.tool_calls or ()
    )
    try:
        return Message(
            role=_ROLES[message.role],
            content=_content(message, where),
            tool_calls=calls,
            tool_call_id=message.tool_call_id,
        )
    except ValidationError as exc:  # tool_calls on a user message, tool_call_id off a tool one
        raise InvalidRequestError(f"'{where}': {_reason(exc)}.", param=where) from None


def _content(message: protocol.ChatMessage, where: str) -> str | list[Part]:
    content = message.content
    if not isinstance(content, list) or all(isinstance(p, protocol.TextPart) for p in content):
        return message.text()
    return [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]


def _part(part: protocol.ContentPart, where: str) -> Part:
    if isinstance(part, protocol.TextPart):
        return TextPart(text=part.text)
    try:
        if isinstance(part, protocol.ImageURLPart):
            return ImagePart.from_url(part.image_url.url)
        return AudioPart.model_validate({"data": part.input_audio.data, "format": part.input_audio.format})
    except ValueError as exc:  # a malformed data: URL, bytes that are not base64
        field = "image_url.url" if isinstance(part, protocol.ImageURLPart) else "input_audio.data"
        raise InvalidRequestError(
            f"'{where}.{field}': {_reason(exc)}.",
            hint="Send the bytes base64-encoded, an image as data:image/png;base64,<bytes>.",
            param=f"{where}.{field}",
        ) from None


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        message = str(exc.errors()[0]["msg"])
        return message.removeprefix("Value error, ")
    return str(exc)
