"""Value types shared by every layer: messages, generation parameters, results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from modelatlas.parts import AudioPart, ImagePart, Part, PartKind, TextPart, ToolCall
from modelatlas.structured import ResponseFormat, TokenLogprob, Tool, TopToken

__all__ = [
    "AudioPart",
    "Chunk",
    "Completion",
    "Embeddings",
    "FinishReason",
    "GenerationParams",
    "ImagePart",
    "LogLikelihood",
    "Message",
    "Part",
    "PartKind",
    "Prompt",
    "ResponseFormat",
    "Role",
    "TextPart",
    "Timing",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "TopToken",
    "Usage",
    "prompt_kinds",
]

Role = Literal["system", "user", "assistant", "tool"]
Content = str | list[Part]


class Message(BaseModel):
    """A role and its content: plain text, or a list of typed parts (text, image, audio).

    An assistant message may carry the tool calls the model asked for, a tool message the id of
    the call it answers. ``tool_calls`` is a tuple so that a message stays hashable, as a frozen
    value should. Those two fields are left out of a dump when unset, so a text message dumps as
    ``{"role", "content"}`` exactly as before parts existed: dataset hashes, cache keys and
    stored samples of text prompts are unchanged.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: Content
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _tool_fields_fit_the_role(self) -> Self:
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"tool_calls belong on an assistant message, not a {self.role} one")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError(f"tool_call_id belongs on a tool message, not a {self.role} one")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.tool_calls:
            data.pop("tool_calls", None)
        if self.tool_call_id is None:
            data.pop("tool_call_id", None)
        return data

    @classmethod
    def system(cls, content: Content) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: Content) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: Content, tool_calls: Sequence[ToolCall] = ()) -> Message:
        return cls(role="assistant", content=content, tool_calls=tuple(tool_calls))

    @classmethod
    def tool(cls, tool_call_id: str, content: Content) -> Message:
        """The result of the tool call ``tool_call_id``."""
        return cls(role="tool", content=content, tool_call_id=tool_call_id)

    @property
    def text(self) -> str:
        """The text of the message: the content, or its text parts joined (what text-only code reads)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def parts(self) -> list[Part]:
        """The content as parts, always a list (plain text is one text part)."""
        if isinstance(self.content, str):
            return [TextPart(text=self.content)]
        return list(self.content)

    @property
    def kinds(self) -> frozenset[PartKind]:
        """The kinds of part present (plain text is ``{"text"}``)."""
        if isinstance(self.content, str):
            return frozenset({"text"})
        return frozenset(part.type for part in self.content)

    def files(self) -> list[Path]:
        """The paths of the message's file parts (images and sounds given by path)."""
        if isinstance(self.content, str):
            return []
        return [p.path for p in self.content if isinstance(p, ImagePart | AudioPart) and p.path is not None]

    def under(self, folder: Path) -> Message:
        """The message with relative file paths taken from ``folder`` (a dataset's own folder,
        not wherever the command runs)."""
        if isinstance(self.content, str) or all(path.is_absolute() for path in self.files()):
            return self
        content = [_under(part, folder) for part in self.content]
        return self.model_copy(update={"content": content})

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the message in hashes and cache keys (JSON-ready).

        A text message is its plain dump, exactly as before parts existed (existing caches keep
        hitting, dataset hashes stay). A part with bytes or a path counts by the sha256 of its
        bytes: a path's file is read, so the same name with other bytes is another prompt.
        """
        if isinstance(self.content, str):
            if not self.tool_calls and self.tool_call_id is None:  # the common case, without pydantic
                return {"role": self.role, "content": self.content}
            return self.model_dump(mode="json")
        data = self.model_dump(mode="json", exclude={"content"})
        data["content"] = [part.fingerprint() for part in self.content]
        return data


def _under(part: Part, folder: Path) -> Part:
    if isinstance(part, ImagePart | AudioPart) and part.path is not None and not part.path.is_absolute():
        return part.model_copy(update={"path": folder / part.path})
    return part


# A prompt is either a chat (a list of messages, rendered with the model's chat template)
# or a plain string, sent as is for completion.
Prompt = str | Sequence[Message]


def prompt_kinds(prompt: Prompt) -> frozenset[PartKind]:
    """The kinds of part a prompt holds (a plain string is text)."""
    if isinstance(prompt, str):
        return frozenset({"text"})
    kinds: frozenset[PartKind] = frozenset()
    for message in prompt:
        kinds |= message.kinds
    return kinds


class GenerationParams(BaseModel):
    """Sampling settings. Every field takes part in the response cache key.

    The fields after ``seed`` are what applications ask beyond plain sampling (OpenAI's names
    and ranges): penalties, ``logit_bias`` (token id, bias from -100 to 100), ``logprobs`` (None:
    none; k: each answer token's log-probability and its k likeliest alternatives), the
    ``tools`` the model may call and how (``tool_choice`` "auto", "none", "required" or a
    tool's name), and the ``response_format`` the answer must keep. Each is left out of a dump
    while it has its default, so cache keys of plain requests are what they were before them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int | None = 0
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: tuple[tuple[int, float], ...] = ()
    logprobs: int | None = Field(None, ge=0, le=20)
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None

    @model_validator(mode="after")
    def _choice_names_a_tool(self) -> Self:
        for token, bias in self.logit_bias:
            if not -100.0 <= bias <= 100.0:
                raise ValueError(f"logit_bias for token {token} is {bias}; it must be from -100 to 100")
        if self.tool_choice in ("auto", "none", "required"):
            if self.tool_choice == "required" and not self.tools:
                raise ValueError("tool_choice 'required' needs at least one tool")
            return self
        if self.tool_choice not in {tool.name for tool in self.tools}:
            names = ", ".join(tool.name for tool in self.tools) or "none"
            raise ValueError(
                f"tool_choice names {self.tool_choice!r}, which is not among the tools ({names})"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _LATER_FIELDS:
            if self._at_default(name):
                data.pop(name, None)
        return data

    @property
    def plain(self) -> bool:
        """Whether only the plain sampling fields are set (what every backend honours)."""
        return all(self._at_default(name) for name in _LATER_FIELDS)

    def _at_default(self, name: str) -> bool:
        return bool(getattr(self, name) == type(self).model_fields[name].default)


# The fields after ``seed``, left out of a dump at their defaults (see GenerationParams).
_NAMES = list(GenerationParams.model_fields)
_LATER_FIELDS = tuple(_NAMES[_NAMES.index("seed") + 1 :])


class Usage(BaseModel):
    """What a call used. ``audio_seconds`` is the length of the audio a speech model
    transcribed, ``images`` the pictures an image model made; each is left out of a dump when
    zero, so text calls dump as before."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    audio_seconds: float = 0.0
    images: int = 0

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in ("audio_seconds", "images"):
            if not data.get(name):
                data.pop(name, None)
        return data

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            audio_seconds=self.audio_seconds + other.audio_seconds,
        )


class Timing(BaseModel):
    """Measured by the Model wrapper: wall time, time to first token and decode speed."""

    model_config = ConfigDict(extra="forbid")

    latency_s: float = 0.0
    ttft_s: float | None = None
    tokens_per_s: float | None = None


FinishReason = Literal["stop", "length", "tool_calls", "error", "cancelled"]


class Completion(BaseModel):
    """A whole answer. ``tool_calls`` are the calls the model made (finish reason
    "tool_calls"), ``logprobs`` each answer token's log-probability when asked for; both are
    left out of a dump when empty, so stored answers of plain requests dump as before."""

    model_config = ConfigDict(extra="forbid")

    text: str
    model: str
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    timing: Timing = Field(default_factory=Timing)
    cached: bool = False  # served from the response cache (usage and timing are the original ones)
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: list[TokenLogprob] | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_empty(handler(self))


class Chunk(BaseModel):
    """One piece of a stream. The last chunk carries ``finish_reason`` and the usage
    (and, from the Model wrapper, the timing). A tool call arrives whole, in the chunk in
    which the model finished writing it; ``logprobs`` are those of the chunk's tokens."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    timing: Timing | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: list[TokenLogprob] | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_empty(handler(self))


def _without_empty(data: dict[str, Any]) -> dict[str, Any]:
    if not data.get("tool_calls"):
        data.pop("tool_calls", None)
    if data.get("logprobs") is None:
        data.pop("logprobs", None)
    return data


class Embeddings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vectors: list[list[float]]
    model: str
    usage: Usage = Field(default_factory=Usage)


class LogLikelihood(BaseModel):
    """Log-probability of a continuation given a context, as used for multiple choice."""

    model_config = ConfigDict(extra="forbid")

    logprob: float
    is_greedy: bool
    tokens: int
