"""The evaluation dataset item: a core value type, so that every work package can share it.

It lives below ``evals`` and ``strategies`` (both read items, and the prompting strategies turn
them into prompts), so that neither has to import the other for it. ``evals.types`` re-exports it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from modelatlas.parts import AudioPart, ImagePart
from modelatlas.structured import ResponseFormat, Tool
from modelatlas.types import Message

__all__ = ["Item"]


class Item(BaseModel):
    """One dataset row. ``reference`` is always a list (one or more acceptable answers)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    input: str | None = None
    messages: list[Message] | None = None
    # A speech item's sound (a dataset's ``audio`` column): what a speech model transcribes,
    # and what a chat model that takes audio gets with the question.
    audio: AudioPart | None = None
    # An item's pictures (a dataset's ``image`` column: one path or a list): what a model that
    # takes images sees with the question (evals.image_rows places them in the user's message).
    images: list[ImagePart] = Field(default_factory=list)
    reference: list[str] = Field(default_factory=list)
    choices: list[str] | None = None
    answer: int | None = None  # index into choices
    metadata: dict[str, Any] = Field(default_factory=dict)
    line: int | None = None  # where it came from in its file (1-based), for error messages
    # What the item's call asks beyond the prompt (a dataset's tools, tool_choice and
    # response_format fields, evals.structured_rows), sent with it as GenerationParams. Left out
    # of a dump while unset, so that a dataset without them keeps its content hash.
    tools: list[Tool] = Field(default_factory=list)
    tool_choice: str | None = None
    response_format: ResponseFormat | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("tools", "tool_choice", "response_format"):
            if getattr(self, key) in (None, []):
                data.pop(key, None)
        return data

    @property
    def prompt_text(self) -> str:
        """The user-visible question: ``input``, or the last user message."""
        if self.input is not None:
            return self.input
        users = [m.text for m in self.messages or [] if m.role == "user"]
        return users[-1] if users else ""
