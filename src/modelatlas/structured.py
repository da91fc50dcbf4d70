"""What an application asks of an answer beyond its text: tools it may call, a JSON shape it
must keep, and the log-probability of each token it wrote.

These are value types below every package (``types.GenerationParams`` and ``types.Completion``
carry them): serve fills them from OpenAI's request fields, the eval runner from a dataset's
``tools``, ``tool_choice`` and ``response_format`` fields, and each backend honours them or
refuses them (a model whose chat template has no tool support refuses ``tools``).

A JSON schema is kept as the dict the client sent (``parameters``, ``json_schema``): it is
carried to the template, the grammar and the validator as is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ResponseFormat", "TokenLogprob", "Tool", "TopToken", "choice_names"]

TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"  # OpenAI's rule for a function's name


class Tool(BaseModel):
    """A function the model may call: its name, what it does, and its arguments' JSON schema."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=TOOL_NAME)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False

    def openai(self) -> dict[str, Any]:
        """The tool in OpenAI's request shape (what chat templates and hosted APIs take)."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}


class ResponseFormat(BaseModel):
    """The shape the answer must keep: free text, any JSON object, or JSON that validates
    against ``json_schema`` (``strict``: every keyword of the schema is enforced, or refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = False

    @property
    def constrains(self) -> bool:
        return self.type != "text"


class TopToken(BaseModel):
    """One of the likeliest tokens at a position: its text, log-probability and UTF-8 bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopToken):
    """A token of the answer with its log-probability and the ``top`` likeliest tokens there
    (OpenAI's chat ``logprobs.content`` entries)."""

    top: list[TopToken] = Field(default_factory=list)


def choice_names(tool_choice: str, tools: tuple[Tool, ...]) -> tuple[str, ...]:
    """The functions a call must be one of: all tools for "auto"/"required", one for a named
    choice, none for "none"."""
    if tool_choice == "none":
        return ()
    if tool_choice in ("auto", "required"):
        return tuple(tool.name for tool in tools)
    return (tool_choice,)
