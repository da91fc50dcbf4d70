"""OpenAI's Responses API on the wire: the request of ``POST /v1/responses`` and the response
object it answers (serve/responses.py holds the logic, serve/responses_events.py the stream).

The request is strict like the chat request (a wrong type is a 400 naming the parameter) and
ignores fields OpenAI does not define. Every field OpenAI defines is either honoured or, when
set to something this server cannot do, refused by ``check`` with a 400 naming it (see
``REFUSED`` below): nothing a client asks for is dropped without a word.

Input items and tools are told apart by their ``type``; one this server does not take (a
``reasoning`` item, a ``web_search`` tool) is read as ``OtherItem`` / ``OtherTool`` so that the
refusal can name it, instead of pydantic's "does not match any of the union's members". The
union tags start with a capital letter, which the error mapper (serve/errors.py) leaves out of
a parameter's path: a bad text part is ``input[0].content[1].text``, not
``input[0].message.content[1].input_text.text``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from modelatlas.serve.protocol import _Request


def _tagged(names: dict[str, str], default: str | None = None, other: str | None = None) -> Discriminator:
    """A discriminator that reads ``type`` (``default`` when absent) and maps it to a tag;
    an unknown type goes to the ``other`` tag, to be refused by name."""

    def pick(value: Any) -> str | None:
        kind = value.get("type", default) if isinstance(value, dict) else getattr(value, "type", None)
        return names.get(kind, other) if isinstance(kind, str) else other

    return Discriminator(pick)


# -- input ---------------------------------------------------------------------------------------


class InputText(_Request):
    type: Literal["input_text"]
    text: str


class OutputText(_Request):
    """The text of an assistant turn given back (an earlier response's output)."""

    type: Literal["output_text"]
    text: str


class Refusal(_Request):
    type: Literal["refusal"]
    refusal: str


class InputImage(_Request):
    type: Literal["input_image"]
    image_url: str | None = None  # a data: URL, or a web address (see serve/image_urls.py)
    file_id: str | None = None  # refused: this server has no Files API
    detail: Literal["auto", "low", "high", "original"] | None = None


class OtherPart(_Request):
    type: str


def _text_or_list(value: Any) -> str:
    """``str | list[...]`` told apart by the value, so that a bad list item is reported where it
    is (pydantic would otherwise report first that the list is not a string)."""
    return "Text" if isinstance(value, str) else "List"


_PARTS = {"input_text": "Text", "output_text": "Output", "refusal": "Refusal", "input_image": "Image"}
Part = Annotated[
    Annotated[InputText, Tag("Text")]
    | Annotated[OutputText, Tag("Output")]
    | Annotated[Refusal, Tag("Refusal")]
    | Annotated[InputImage, Tag("Image")]
    | Annotated[OtherPart, Tag("Other")],
    _tagged(_PARTS, other="Other"),
]
TextOrParts = Annotated[
    Annotated[str, Tag("Text")] | Annotated[list[Part], Tag("List")], Discriminator(_text_or_list)
]


class MessageItem(_Request):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: TextOrParts


class FunctionCallItem(_Request):
    """A call the model made in an earlier turn, given back with its result."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(_Request):
    type: Literal["function_call_output"]
    call_id: str
    output: TextOrParts


class OtherItem(_Request):
    type: str


_ITEMS = {"message": "Message", "function_call": "Call", "function_call_output": "CallOutput"}
Item = Annotated[
    Annotated[MessageItem, Tag("Message")]
    | Annotated[FunctionCallItem, Tag("Call")]
    | Annotated[FunctionCallOutputItem, Tag("CallOutput")]
    | Annotated[OtherItem, Tag("Other")],
    _tagged(_ITEMS, default="message", other="Other"),
]
TextOrItems = Annotated[
    Annotated[str, Tag("Text")] | Annotated[list[Item], Tag("List")], Discriminator(_text_or_list)
]


# -- tools and formats ---------------------------------------------------------------------------


class FunctionTool(_Request):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None  # OpenAI's default in the Responses API: true


class OtherTool(_Request):
    type: str


Tool = Annotated[
    Annotated[FunctionTool, Tag("Function")] | Annotated[OtherTool, Tag("Other")],
    _tagged({"function": "Function"}, other="Other"),
]


class NamedChoice(_Request):
    type: Literal["function"]
    name: str


class OtherChoice(_Request):
    type: str


Choice = Annotated[
    Annotated[NamedChoice, Tag("Function")] | Annotated[OtherChoice, Tag("Other")],
    _tagged({"function": "Function"}, other="Other"),
]


class TextFormat(_Request):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    json_schema: dict[str, Any] | None = Field(None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Request):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class StreamOptions(_Request):
    include_obfuscation: bool = True  # we send no obfuscation padding; a client needs none


# -- the request ---------------------------------------------------------------------------------


class ResponsesRequest(_Request):
    model: str
    input: TextOrItems
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | Choice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    store: bool | None = None  # OpenAI's default: true (kept in this server's memory)
    previous_response_id: str | None = None
    include: list[str] | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    background: bool | None = None
    reasoning: dict[str, Any] | None = None
    max_tool_calls: int | None = None
    prompt_cache_retention: str | None = None
    conversation: Any = None
    prompt: Any = None
    context_management: Any = None
    moderation: Any = None
    image: Any = None
    access_programs: Any = None
    background_options: Any = None
    prompt_cache_options: Any = None

    @property
    def stored(self) -> bool:
        return self.store is not False

    @property
    def function_tools(self) -> list[FunctionTool]:
        return [tool for tool in self.tools or () if isinstance(tool, FunctionTool)]

    @property
    def text_format(self) -> TextFormat:
        fmt = self.text.format if self.text else None
        return fmt or TextFormat(type="text")


# -- the response --------------------------------------------------------------------------------


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] = Field(default_factory=list)


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class OutputTextPart(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[TokenLogprob] = Field(default_factory=list)


ItemStatus = Literal["in_progress", "completed", "incomplete"]


class OutputMessage(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: ItemStatus = "completed"
    content: list[OutputTextPart] = Field(default_factory=list)


class OutputFunctionCall(BaseModel):
    id: str
    type: Literal["function_call"] = "function_call"
    status: ItemStatus = "completed"
    call_id: str
    name: str
    arguments: str


OutputItem = OutputMessage | OutputFunctionCall


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int

    @classmethod
    def of(cls, input_tokens: int, output_tokens: int) -> ResponseUsage:
        return cls(
            input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
        )


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(BaseModel):
    code: str
    message: str


class ResponseObject(BaseModel):
    """The response, with the request's settings echoed as OpenAI's SDK models expect them."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    completed_at: int | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    model: str
    output: list[OutputItem] = Field(default_factory=list)
    usage: ResponseUsage | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_logprobs: int = 0
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = True
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: dict[str, Any] = Field(default_factory=lambda: {"effort": None, "summary": None})
    previous_response_id: str | None = None
    store: bool = True
    background: bool = False
    truncation: Literal["disabled"] = "disabled"
    service_tier: str = "default"
    metadata: dict[str, str] = Field(default_factory=dict)
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
