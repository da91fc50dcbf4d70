"""Content parts: what a message holds besides plain text, and the tool calls it carries.

A part holds its bytes, a path to a file on this machine, or (images only) a URL the user gave.
Nothing here fetches a URL: a URL is passed on to a provider that takes one, as the user asked,
and never downloaded behind the user's back. A path is read when the prompt is sent or hashed,
so the cache key covers the file's bytes, not its name.

Bytes travel as base64 in JSON (``model_dump(mode="json")`` and back round trip); in Python
they stay ``bytes``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from modelatlas.errors import InvalidRequestError

__all__ = ["AudioPart", "Base64Bytes", "ImagePart", "Part", "PartKind", "TextPart", "ToolCall", "data_url"]

PartKind = Literal["text", "image", "audio"]


def _from_base64(value: object) -> object:
    """Bytes from JSON arrive as base64 text; bytes from Python pass as they are."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("bytes in JSON must be base64 text") from None
    return value


def _to_base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


Base64Bytes = Annotated[
    bytes, BeforeValidator(_from_base64), PlainSerializer(_to_base64, return_type=str, when_used="json")
]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the part in hashes and cache keys (JSON-ready)."""
        return self.model_dump(mode="json")


class TextPart(_Part):
    type: Literal["text"] = "text"
    text: str


class _FilePart(_Part):
    """A part whose content is bytes held here or a file's bytes read when needed."""

    label: ClassVar[str] = "file"
    data: Base64Bytes | None = None
    path: Path | None = None

    def read(self) -> bytes:
        """The part's bytes (a path is read now: the file as it is when the prompt is sent)."""
        if self.data is not None:
            return self.data
        if self.path is None:
            raise InvalidRequestError(f"This {self.label} part has no bytes: it refers to a URL.")
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise InvalidRequestError(
                f"Cannot read the {self.label} file {self.path}: {exc.strerror or exc}.",
                hint="Check the path; a path part is read when the prompt is sent.",
            ) from None

    def digest(self) -> str:
        """The sha256 of the part's bytes (a path's file is read: its bytes count, not its name)."""
        return hashlib.sha256(self.read()).hexdigest()


class ImagePart(_FilePart):
    """An image: bytes with their media type, a file path, or a URL the user gave."""

    label: ClassVar[str] = "image"
    type: Literal["image"] = "image"
    media_type: str | None = None  # "image/png"; guessed from a path's suffix when left out
    url: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = [name for name in ("data", "path", "url") if getattr(self, name) is not None]
        if len(sources) != 1:
            raise ValueError(f"an image part takes exactly one of data, path or url (got {len(sources)})")
        if self.data is not None and not self.media_type:
            raise ValueError("image bytes need a media_type, for example image/png")
        return self

    @classmethod
    def from_url(cls, url: str) -> ImagePart:
        """A part for ``url``: a ``data:`` URL becomes its bytes, any other URL stays a URL."""
        if not url.startswith("data:"):
            return cls(url=url)
        header, sep, payload = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise ValueError("a data URL must look like data:image/png;base64,<base64 bytes>")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the data URL's bytes are not base64") from None
        return cls(data=data, media_type=media_type)

    def media(self) -> str:
        """The media type, from the part or the path's suffix (image/png when unknown)."""
        if self.media_type:
            return self.media_type
        guessed = mimetypes.guess_type(self.path.name)[0] if self.path is not None else None
        return guessed or "image/png"

    def fingerprint(self) -> dict[str, Any]:
        """The URL as given (it is never fetched), or the media type and the bytes' sha256."""
        if self.url is not None:
            return {"type": self.type, "url": self.url}
        return {"type": self.type, "media_type": self.media(), "sha256": self.digest()}


class AudioPart(_FilePart):
    """A sound: bytes with their format (``wav``, ``mp3``), or a file path."""

    label: ClassVar[str] = "audio"
    type: Literal["audio"] = "audio"
    format: str | None = None  # "wav", "mp3"; taken from a path's suffix when left out

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.data is None) == (self.path is None):
            raise ValueError("an audio part takes exactly one of data or path")
        if self.data is not None and not self.format:
            raise ValueError("audio bytes need a format, for example wav")
        return self

    def audio_format(self) -> str:
        if self.format:
            return self.format
        suffix = self.path.suffix.lstrip(".").lower() if self.path is not None else ""
        return suffix or "wav"

    def fingerprint(self) -> dict[str, Any]:
        return {"type": self.type, "format": self.audio_format(), "sha256": self.digest()}


Part = Annotated[TextPart | ImagePart | AudioPart, Field(discriminator="type")]


class ToolCall(BaseModel):
    """A call of a tool the model asked for, on an assistant message.

    ``arguments`` is the JSON text as the model wrote it: it is carried back unparsed, because a
    model may write JSON that does not parse and the conversation must still replay as it was.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    arguments: str = "{}"


def data_url(media_type: str, data: bytes) -> str:
    """Bytes as a ``data:`` URL (what OpenAI's ``image_url`` takes for bytes)."""
    return f"data:{media_type};base64,{_to_base64(data)}"
