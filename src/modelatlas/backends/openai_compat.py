"""OpenAI, Azure OpenAI and every OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp).

A chat prompt goes to ``chat.completions``, a plain string to the legacy ``completions``
endpoint. The SDK client never retries (``max_retries=0``): the Model wrapper owns retries.

The API key is read from the environment variable named by ``api_key_env`` and goes nowhere
else: not into options, logs, or error messages. Streams ask for usage
(``stream_options.include_usage``); servers that ignore it (llama-cpp-python's server does)
get an estimate: one token per non-empty text delta, which is what token-by-token servers
send, and the prompt's length from ``count_tokens``. Usage from the server always wins.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from email.utils import parsedate_to_datetime
from typing import Literal

from pydantic import Field

from modelatlas.backends import openai_chat
from modelatlas.backends.base import Backend, BackendOptions, Progress, as_messages, require
from modelatlas.backends.declared import BackendFacts
from modelatlas.backends.messages import reads_files
from modelatlas.errors import (
    BackendError,
    ConfigError,
    ContextLengthExceededError,
    InvalidRequestError,
    MissingAPIKeyError,
    ModelAtlasError,
    RateLimitError,
    TransientError,
)
from modelatlas.images import ImageParams, Images
from modelatlas.parts import AudioPart
from modelatlas.transcripts import TranscribeParams, Transcript
from modelatlas.types import Chunk, Completion, Embeddings, GenerationParams, Prompt, Usage

PLACEHOLDER_KEY = "not-needed"
AZURE_API_VERSION = "2024-10-21"
AZURE_ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
_CONTEXT = re.compile(
    r"maximum context length is (\d+) tokens.*?requested (\d+) tokens \((\d+) in [^,;]+[,;] (\d+)", re.S
)


class OpenAIOptions(BackendOptions):
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    azure: bool = False
    azure_endpoint: str | None = None
    api_version: str | None = None
    deployment: str | None = None
    organization: str | None = None
    timeout_s: float = Field(600.0, gt=0)
    context_length: int | None = Field(None, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    # The answer audio.transcriptions is asked for; None: verbose_json, or json for OpenAI's
    # gpt-4o transcribe models, which give no other (backends/openai_audio.py).
    transcript_format: Literal["verbose_json", "json"] | None = None


class OpenAIBackend(Backend):
    name = "openai"
    Options = OpenAIOptions
    # Images go as image_url parts, audio as input_audio (backends/messages.py); a server that
    # cannot take one answers with its own 400.
    accepts = frozenset({"text", "image", "audio"})
    # Transcription (audio.transcriptions) only for records in mode "transcription", and
    # images.generate only for records in mode "image_generation": a chat model's record
    # claims neither (facts below).
    capabilities = frozenset({"generate", "stream", "embeddings", "transcription", "image_generation"})
    honours = openai_chat.HONOURED  # passed on as OpenAI's fields; the server refuses what it cannot do

    @classmethod
    def facts(cls, record) -> BackendFacts:
        options = cls.options_of(record)
        capabilities, accepts = cls.capabilities, cls.accepts
        if record.mode == "transcription":  # a speech model takes an audio file, nothing else
            accepts = frozenset({"audio"})
        elif record.mode == "image_generation":  # images.generate takes a text prompt
            accepts = frozenset({"text"})
        else:
            capabilities = capabilities - {"transcription", "image_generation"}
        where = options.base_url or ("Azure OpenAI" if options.azure else None)
        # Azure needs to know where the deployment is: an option, or the variable (_client_factory).
        endpoint_env = options.azure and not (options.azure_endpoint or options.base_url)
        return cls.declare(
            record,
            hosted=True,
            required_env=(options.api_key_env,) if options.api_key_env else (),
            config_env=(AZURE_ENDPOINT_ENV,) if endpoint_env else (),
            where=where or "OpenAI",
            memory_bytes=0,
            capabilities=capabilities,
            accepts=accepts,
        )

    @classmethod
    def completes_text(cls, record) -> bool:
        """OpenAI's own API and Azure answer chat models on chat/completions only (legacy
        completions serve the instruct and base models: mode "completion"); an OpenAI-compatible
        server (vLLM, llama.cpp, Ollama) completes text with any model."""
        options = cls.options_of(record)
        official = options.azure or options.base_url is None or "api.openai.com" in options.base_url
        return not (official and record.mode == "chat")

    def __init__(self, model_id: str, location: str | None, options: OpenAIOptions):
        super().__init__(model_id, location, options)
        self._key = _api_key(options.api_key_env, model_id)
        model = options.model or model_id.partition("/")[2] or model_id
        self.remote_model = (options.deployment or model) if options.azure else model
        self._openai = require("openai", extra="all")
        self._make_client = self._client_factory(self._openai)
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _client_factory(self, openai):
        opts = self.options
        common = dict(
            api_key=self._key,
            organization=opts.organization,
            timeout=opts.timeout_s,
            max_retries=0,
            default_headers=opts.headers or None,
        )
        self.where = opts.base_url or "the OpenAI API"
        if not opts.azure:
            return functools.partial(openai.AsyncOpenAI, base_url=opts.base_url, **common)
        endpoint = opts.azure_endpoint or os.environ.get(AZURE_ENDPOINT_ENV)
        if not endpoint and not opts.base_url:
            raise ConfigError(
                f"{self.model_id}: Azure OpenAI needs an endpoint.",
                hint="Set AZURE_OPENAI_ENDPOINT or the azure_endpoint option.",
            )
        self.where = opts.base_url or endpoint
        where = {"base_url": opts.base_url} if opts.base_url else {"azure_endpoint": endpoint}
        version = opts.api_version or AZURE_API_VERSION
        return functools.partial(openai.AsyncAzureOpenAI, api_version=version, **where, **common)

    @property
    def client(self):
        """The SDK client of the running event loop (its connections belong to that loop)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._make_client()
        return client

    def identity(self) -> str:
        return f"openai:{self.where}:{self.remote_model}"

    @property
    def context_length(self) -> int | None:
        return self.options.context_length

    async def generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        response = await self._call(self._create(prompt, params, stream=False))
        choice = response.choices[0]
        text = choice.text if isinstance(prompt, str) else (choice.message.content or "")
        return Completion(
            text=text,
            model=self.model_id,
            finish_reason=_finish(choice.finish_reason),
            usage=_usage(response.usage) or self._estimate(prompt, self.count_tokens(text)),
            tool_calls=() if isinstance(prompt, str) else openai_chat.tool_calls_of(choice.message),
            logprobs=openai_chat.logprobs_of(getattr(choice, "logprobs", None)),
        )

    async def stream(self, prompt: Prompt, params: GenerationParams) -> AsyncIterator[Chunk]:
        finish, usage, pieces, error = None, None, 0, None
        calls = openai_chat.CallAssembler()  # a call's fragments, passed on whole
        try:
            async for event in await self._create(prompt, params, stream=True):
                usage = _usage(getattr(event, "usage", None)) or usage
                for choice in event.choices[:1]:
                    finish = choice.finish_reason or finish
                    chunk = _chunk(choice, isinstance(prompt, str), calls)
                    if chunk is not None:
                        pieces += 1
                        yield chunk
        except self._openai.OpenAIError as exc:
            error = self.translate(exc)
        if error is not None:  # raised outside the handler, so the SDK's error is not chained
            raise error from None
        if finish is None:
            raise BackendError(
                f"{self.model_id}: the stream ended before the server finished the answer.",
                hint="llama-cpp-python's server does this when the prompt does not fit its context.",
            )
        yield Chunk(finish_reason=_finish(finish), usage=usage or self._estimate(prompt, pieces))

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        request = self.client.embeddings.create(model=self.remote_model, input=list(texts))
        response = await self._call(request)
        vectors = [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        tokens = response.usage.prompt_tokens if response.usage else sum(map(self.count_tokens, texts))
        return Embeddings(vectors=vectors, model=self.model_id, usage=Usage(input_tokens=tokens))

    async def embed_input(self, inputs, dimensions: int | None = None, truncate: bool = False) -> Embeddings:
        """Texts or token ids passed on as given, with ``dimensions`` (the provider shortens
        text-embedding-3 vectors, and refuses it for a model that cannot); ``truncate`` cannot be
        passed on: the provider refuses over-long input itself."""
        if truncate:
            raise InvalidRequestError(
                f"'truncate' is not supported for {self.model_id}: the provider refuses over-long input.",
                hint="Leave 'truncate' out and send input that fits the model's window.",
                param="truncate",
            )
        extra = {} if dimensions is None else {"dimensions": dimensions}
        request = self.client.embeddings.create(model=self.remote_model, input=list(inputs), **extra)
        response = await self._call(request)
        vectors = [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        counted = sum(self.count_tokens(i) if isinstance(i, str) else len(i) for i in inputs)
        tokens = response.usage.prompt_tokens if response.usage else counted
        return Embeddings(vectors=vectors, model=self.model_id, usage=Usage(input_tokens=tokens))

    async def transcribe(self, audio: AudioPart, params: TranscribeParams) -> Transcript:
        """Speech to text through ``audio.transcriptions`` (OpenAI, Azure deployments, and any
        server that speaks it); see backends/openai_audio.py for the request and the answer."""
        from modelatlas.backends import openai_audio

        data = await asyncio.to_thread(audio.read)  # a path is read off the event loop
        form = openai_audio.response_format(self.remote_model, self.options.transcript_format)
        args = openai_audio.request(audio, data, params, self.remote_model, form)
        response = await self._call(self.client.audio.transcriptions.create(**args))
        return await asyncio.to_thread(openai_audio.transcript, response, audio, data, params, self.model_id)

    async def generate_image(
        self, prompt: str, params: ImageParams, progress: Progress | None = None
    ) -> Images:
        """Text to image through ``images.generate`` (OpenAI's GPT Image and DALL-E models, Azure
        deployments, any server that speaks it); see backends/openai_images.py."""
        from modelatlas.backends import openai_images

        compatible = bool(self.options.base_url) and not self.options.azure
        # The family from the record's id too: an Azure deployment may be named anything.
        family = f"{self.model_id} {self.remote_model}"
        sizes = openai_images.calls(family, params)
        requests = [
            openai_images.request(self.remote_model, prompt, params, n, compatible, family) for n in sizes
        ]
        responses = await asyncio.gather(*(self._call(self.client.images.generate(**a)) for a in requests))
        pictures = [image for r in responses for image in openai_images.images(r, params, compatible)]
        usage = openai_images.usage(list(responses), len(pictures))
        return Images(images=pictures, model=self.model_id, prompt=prompt, usage=usage)

    async def aclose(self) -> None:
        clients, self._clients = dict(self._clients), weakref.WeakKeyDictionary()
        client = clients.get(asyncio.get_running_loop())
        if client is not None:  # clients of loops that have ended went with their connections
            await client.close()

    # -- internals -------------------------------------------------------------------------

    async def _create(self, prompt: Prompt, params: GenerationParams, stream: bool):
        args: dict = {"model": self.remote_model, "max_tokens": params.max_tokens, "stream": stream}
        args.update(temperature=params.temperature, top_p=params.top_p)
        if params.stop:
            args["stop"] = list(params.stop)
        if params.seed is not None:
            args["seed"] = params.seed
        if isinstance(prompt, str):
            args.update(openai_chat.completion_fields(params))
            return await self.client.completions.create(prompt=prompt, **args)
        args.update(openai_chat.chat_fields(params))
        if stream:
            args["stream_options"] = {"include_usage": True}
        # A path part is read as the request is built: off the event loop.
        messages = (
            await asyncio.to_thread(as_messages, prompt) if reads_files(prompt) else as_messages(prompt)
        )
        return await self.client.chat.completions.create(messages=messages, **args)

    def _estimate(self, prompt: Prompt, output_tokens: int) -> Usage:
        text = prompt if isinstance(prompt, str) else "\n".join(m.text for m in prompt)
        return Usage(input_tokens=self.count_tokens(text), output_tokens=output_tokens)

    async def _call(self, request):
        """Await an SDK call; its errors become ours, not chained, so no server text leaks."""
        try:
            return await request
        except self._openai.OpenAIError as exc:
            error = self.translate(exc)
        raise error from None

    def translate(self, exc: Exception) -> ModelAtlasError:
        """Our error for an SDK error; the message never holds the API key."""
        openai, where = self._openai, self.where
        if isinstance(exc, openai.APIConnectionError):  # also APITimeoutError
            return TransientError(f"{self.model_id}: could not reach {where}: {type(exc).__name__}.")
        if not isinstance(exc, openai.APIStatusError):
            return BackendError(f"{self.model_id}: {type(exc).__name__}: {self._redact(str(exc))}")
        status = exc.status_code
        said = self._redact(str(getattr(exc, "message", "") or exc))
        if status in (401, 403):
            var = self.options.api_key_env
            hint = f"Check the key in the environment variable {var}." if var else "Set api_key_env."
            return BackendError(f"{self.model_id}: {where} refused the API key (HTTP {status}).", hint=hint)
        if status == 429:
            return RateLimitError(f"{self.model_id}: rate limited: {said}", retry_after=retry_after(exc))
        if status in (408, 409) or status >= 500:
            return TransientError(f"{self.model_id}: HTTP {status}: {said}", retry_after=retry_after(exc))
        if status == 404:
            return BackendError(
                f"{self.model_id}: {where} does not know the model {self.remote_model!r} (HTTP 404).",
                hint="Check the model (or Azure deployment) option and the base_url.",
            )
        if status in (400, 413, 422):
            return self._bad_request(said)
        return BackendError(f"{self.model_id}: HTTP {status}: {said}")

    def _bad_request(self, said: str) -> ModelAtlasError:
        found = _CONTEXT.search(said)
        if found:
            window, _total, prompt_tokens, max_tokens = map(int, found.groups())
            return ContextLengthExceededError(self.model_id, prompt_tokens, max_tokens, window)
        if "context length" in said.lower() or "context_length" in said.lower():
            hint = "Shorten the prompt or lower max_tokens."
            return InvalidRequestError(f"{self.model_id}: {said}", hint=hint)
        return InvalidRequestError(f"{self.model_id}: the server rejected the request: {said}")

    def _redact(self, text: str) -> str:
        if self._key and self._key != PLACEHOLDER_KEY:
            text = text.replace(self._key, "[key]")
        return re.sub(r"\bsk-[A-Za-z0-9_*\-]{4,}", "sk-[redacted]", text)


def _api_key(variable: str | None, model_id: str) -> str:
    if variable is None:
        return PLACEHOLDER_KEY
    key = os.environ.get(variable)
    if not key:
        raise MissingAPIKeyError(variable, model_id)
    return key


def retry_after(exc) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if not value:
            return None
        if re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
            return float(value)
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _finish(reason: str | None) -> str:
    if reason in ("tool_calls", "function_call"):
        return "tool_calls"
    return "length" if reason == "length" else "stop"


def _chunk(choice, completion: bool, calls: openai_chat.CallAssembler) -> Chunk | None:
    """One streamed choice delta as a Chunk: its text, the tool calls now whole, its tokens'
    log-probabilities; None when it carries none of them."""
    text = choice.text if completion else choice.delta.content
    ready = [] if completion else calls.add(choice.delta.tool_calls)
    if choice.finish_reason is not None:
        ready += calls.finish()
    logprobs = openai_chat.logprobs_of(getattr(choice, "logprobs", None))
    if not (text or ready or logprobs):
        return None
    return Chunk(text=text or "", tool_calls=tuple(ready), logprobs=logprobs)


def _usage(usage) -> Usage | None:
    if usage is None:
        return None
    return Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0)
