"""The OpenAI wire format: request and response models for every endpoint.

Requests are strict (a string where a number belongs is a 400 naming the parameter, not a
silent conversion) and ignore fields we do not use yet, as OpenAI-compatible servers do.
What pydantic cannot word well (text that is not valid Unicode, an empty prompt) each request's
``check`` finds, once the request is admitted, so that it is metered as the 400 it answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelatlas.errors import InvalidRequestError

FinishReason = Literal["stop", "length", "tool_calls"]
MAX_SEED = 2**63 - 1  # numpy's and llama.cpp's generators take any seed from 0 to this


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    def check(self) -> None:
        """Refuse text that cannot be encoded as UTF-8: JSON allows a lone UTF-16 surrogate
        (``"\\ud800"``), but no tokenizer or response can carry one."""
        param = _broken_text(self, "")
        if param is not None:
            raise InvalidRequestError(
                f"'{param}' is not valid Unicode text: it holds a lone UTF-16 surrogate.",
                hint="Send UTF-8 text; in JSON, escape a character outside the BMP as a surrogate pair.",
                param=param,
            )


def _broken_text(value: Any, path: str) -> str | None:
    """The path of the first string under ``value`` that holds a lone surrogate, if any."""
    if isinstance(value, str):
        return None if value.isascii() or _encodes(value) else path
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _broken_text(item, f"{path}[{i}]")
            if found is not None:
                return found
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found = _broken_text(getattr(value, name), f"{path}.{name}" if path else name)
            if found is not None:
                return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TextPart(_Request):
    type: Literal["text"]
    text: str


class ImageURL(_Request):
    url: str  # a data: URL (the image's bytes) or a URL the client gave (never fetched here)
    detail: Literal["auto", "low", "high"] | None = None


class ImageURLPart(_Request):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Request):
    data: str  # base64
    format: str  # "wav", "mp3"


class InputAudioPart(_Request):
    type: Literal["input_audio"]
    input_audio: InputAudio


ContentPart = Annotated[TextPart | ImageURLPart | InputAudioPart, Field(discriminator="type")]


class FunctionCall(_Request):
    name: str
    arguments: str  # JSON text, as the model wrote it


class ToolCallItem(_Request):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCallItem] | None = None  # on an assistant message: the calls it made
    tool_call_id: str | None = None  # on a tool message: the call it answers

    def text(self) -> str:
        """The text the message holds (its text parts joined; other parts hold none)."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if isinstance(part, TextPart))
        return self.content or ""


class StreamOptions(_Request):
    include_usage: bool = False


class _Sampling(_Request):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class FunctionDef(_Request):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(_Request):
    type: Literal["function"]  # OpenAI's "custom" tools (free-text input) are refused, naming this
    function: FunctionDef


class FunctionName(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"]
    function: FunctionName


class JSONSchemaFormat(_Request):
    name: str
    description: str | None = None
    json_schema: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormatParam(_Request):
    """One model for OpenAI's three formats (a union would word a mistake in one of them as
    a mismatch with the other two); chat_params checks that json_schema comes with its type."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class ChatCompletionRequest(_Sampling):
    """Every parameter of OpenAI's chat request; serve/chat_params.py says of each whether it
    is honoured or refused (a 400 naming it), and turns the request into GenerationParams."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=128)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatParam | None = None
    user: str | None = None
    safety_identifier: str | None = None
    # Deprecated (tools and tool_choice replace them) and refused with a hint to those.
    functions: list[Any] | None = None
    function_call: Any = None
    # What these models cannot do: refused when set to anything but their default.
    audio: dict[str, Any] | None = None
    modalities: list[str] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    service_tier: str | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    moderation: dict[str, Any] | None = None
    # Prompt-cache hints: they never change an answer (see chat_params.PARAMETERS).
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None

    def requested_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def choices(self) -> int:
        return self.n or 1


TokenIds = Annotated[list[int], Field(min_length=1)]


class CompletionRequest(_Sampling):
    """OpenAI's legacy completions: a prompt is a text, texts, token ids, or lists of token ids.

    ``echo`` puts the prompt before the answer; ``logprobs`` N gives each token's log-probability
    and the N likeliest tokens; ``max_tokens`` 0 with ``echo`` scores the prompt only."""

    prompt: (
        str
        | Annotated[list[str], Field(min_length=1)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1)]
    )
    max_tokens: int | None = Field(None, ge=0)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)

    def requested_tokens(self) -> int | None:
        return self.max_tokens

    def check(self) -> None:
        """Also refuse an empty text prompt: there is no token to start a generation from."""
        super().check()
        prompts = self.prompts()
        for i, prompt in enumerate(prompts):
            if prompt == "":
                where = "prompt" if isinstance(self.prompt, str) else f"prompt[{i}]"
                raise InvalidRequestError(
                    f"'{where}' is empty: there is nothing to complete.",
                    hint="Send a prompt with some text.",
                    param=where,
                )

    def prompts(self) -> list[str | list[int]]:
        """Each prompt of the request (one choice is answered for each)."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if isinstance(self.prompt[0], int):
            return [self.prompt]
        return list(self.prompt)

    @property
    def scored(self) -> bool:
        """Whether the request needs more than one plain text generation."""
        plain = isinstance(self.prompt, str) and not self.echo and self.logprobs is None
        return not plain or self.max_tokens == 0


class EmbeddingRequest(_Request):
    """OpenAI's embeddings request: ``input`` is a text, texts, token ids (the model's own, as
    /tokenize gives them) or lists of them. ``truncate`` (not OpenAI's: vLLM, TEI and Ollama
    have one) cuts input longer than the model's window instead of answering 400."""

    model: str
    input: str | list[str] | TokenIds | list[TokenIds]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    truncate: bool = False
    user: str | None = None

    def texts(self) -> list[str]:
        """The texts among the inputs (token-id inputs are not texts)."""
        return [item for item in self.inputs() if isinstance(item, str)]

    def inputs(self) -> list[str] | list[list[int]]:
        """Each input: a text, or a list of token ids."""
        if isinstance(self.input, str):
            return [self.input]
        if self.input and isinstance(self.input[0], int):
            return [list(self.input)]  # type: ignore[list-item]
        return list(self.input)  # type: ignore[return-value]

    def check(self) -> None:
        """Also refuse no text, or an empty one, as OpenAI does: there is nothing to embed."""
        super().check()
        texts = self.inputs()
        if not texts:
            raise InvalidRequestError("'input' is an empty list: there is nothing to embed.", param="input")
        for i, text in enumerate(texts):
            if text == "":
                where = "input" if isinstance(self.input, str) else f"input[{i}]"
                raise InvalidRequestError(
                    f"'{where}' is an empty string: there is nothing to embed.",
                    hint="Leave it out.",
                    param=where,
                )


# -- responses -------------------------------------------------------------------------------


class UsageInfo(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class FunctionCallOut(BaseModel):
    name: str
    arguments: str  # JSON text, as the model wrote it


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class TopLogprobOut(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobOut(TopLogprobOut):
    top_logprobs: list[TopLogprobOut] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut] | None = None
    refusal: list[TokenLogprobOut] | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None  # None when the model only called tools, as OpenAI answers
    refusal: str | None = None
    tool_calls: list[ToolCallOut] | None = None


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class ToolCallDelta(BaseModel):
    """A streamed tool call: ours arrive whole, so one delta carries its id, name and all of
    its arguments (OpenAI's clients add up the fragments of a call by ``index``)."""

    index: int
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageInfo | None = None


class CompletionLogprobs(BaseModel):
    """Per token: its text, log-probability (None for a prompt's first), likeliest alternatives,
    and where it starts in the prompt followed by the text."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: FinishReason | None = None
    logprobs: CompletionLogprobs | None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: UsageInfo


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str
    parent: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


def usage_info(input_tokens: int, output_tokens: int = 0) -> UsageInfo:
    return UsageInfo(
        prompt_tokens=input_tokens, completion_tokens=output_tokens, total_tokens=input_tokens + output_tokens
    )


def finish(reason: Any) -> FinishReason:
    """Our finish reasons in OpenAI's words (an error or a cancel never reaches a client as one)."""
    if reason == "length":
        return "length"
    return "tool_calls" if reason == "tool_calls" else "stop"
