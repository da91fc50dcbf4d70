"""The Backend contract: what a provider author writes, one class per provider.

A backend turns a prompt into text and nothing more. Retries, the concurrency limit, timing,
cost and logging belong to :class:`modelatlas.backends.model.Model`, which wraps it.

A prompt is a list of :class:`~modelatlas.types.Message` (rendered with the model's chat
template) or a plain string (sent as is, for completion). Backends raise
:class:`~modelatlas.errors.TransientError` for failures worth retrying and
:class:`~modelatlas.errors.BackendError` for the rest.
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from modelatlas.backends.declared import PART_KINDS, TEXT_ONLY, BackendFacts, model_key
from modelatlas.backends.messages import as_messages as as_messages  # re-exported: backends import it here
from modelatlas.errors import ConfigError, InvalidRequestError
from modelatlas.images import ImageParams, Images
from modelatlas.parts import AudioPart
from modelatlas.registry import require as require  # re-exported: backends import it from here
from modelatlas.transcripts import TranscribeParams, Transcript
from modelatlas.types import (
    Chunk,
    Completion,
    Embeddings,
    GenerationParams,
    LogLikelihood,
    Prompt,
    Timing,
    TokenLogprob,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from modelatlas.records import ModelRecord

# A progress callback: (steps done, steps in all), called from a worker thread.
Progress = Callable[[int, int], None]


class BackendOptions(BaseModel):
    """Options of a backend. Unknown keys fail at once, before any call."""

    model_config = ConfigDict(extra="forbid")


class TokenLogprobs(BaseModel):
    """A completion with the log-probability of each token, as OpenAI's legacy completions give it.

    With ``echo`` the lists start with the prompt's tokens (the first one's log-probability is
    None, nothing comes before it). ``text_offset`` counts characters from the prompt's start.
    ``top_logprobs`` maps token text to log-probability for the most likely tokens there.
    """

    prompt: str
    text: str
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]
    finish_reason: str = "length"
    usage: Usage


@dataclass(frozen=True)
class TokenizerFacts:
    """What a model's tokenizer says about itself, as ``GET /tokenizer_info`` reports it (the
    special tokens as text, as Hugging Face tokenizers name them)."""

    tokenizer_class: str
    bos_token: str | None = None
    eos_token: str | None = None
    pad_token: str | None = None
    add_bos_token: bool = False  # whether a text starts with BOS when special tokens are added
    vocab_size: int | None = None
    chat_template: str | None = None


class Backend(ABC):
    """One model served by one provider."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    # What the backend implements (names in declared.CAPABILITIES) and the message part kinds
    # it takes: the source of truth for facts(), which a record may narrow.
    capabilities: ClassVar[frozenset[str]] = frozenset({"generate", "stream"})
    accepts: ClassVar[frozenset[str]] = TEXT_ONLY
    # The older flags, kept readable; __init_subclass__ sets them from ``capabilities`` (a
    # subclass that sets only a flag has its capabilities follow it).
    can_stream: ClassVar[bool] = True
    can_embed: ClassVar[bool] = False
    has_logprobs: ClassVar[bool] = False
    has_token_logprobs: ClassVar[bool] = False  # token_logprobs(): echo and logprobs of completions
    modalities: ClassVar[tuple[str, ...]] = ("text",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declare(cls)

    def __init__(self, model_id: str, location: str | None, options: BackendOptions):
        self.model_id = model_id
        self.location = location
        self.options = options

    @classmethod
    def facts(cls, record: ModelRecord) -> BackendFacts:
        """What this backend declares about ``record``'s model. A backend overrides it to
        return ``cls.declare(record, **what_differs)``."""
        return cls.declare(record)

    @classmethod
    def declare(cls, record: ModelRecord, **declared: Any) -> BackendFacts:
        """This class's facts for ``record`` with the ``declared`` fields on top, built in one go
        (the catalog asks the facts of every record, 5,000 at a load: one construction instead
        of three and a ``replace`` took its cost from about 35 to 9 microseconds a record).

        An embedding record (``mode: embedding``) only makes vectors, whatever else the
        backend could do with another model; the outputs follow the capabilities. The part
        kinds it takes are the backend's narrowed to the record's input modalities, when the
        record lists them."""
        capabilities: frozenset[str] = declared.pop("capabilities", cls.capabilities)
        if record.mode == "embedding":
            capabilities = capabilities & {"embeddings"}
        elif record.mode == "transcription":
            capabilities = capabilities & {"transcription"}
        elif record.mode == "image_generation":
            capabilities = capabilities & {"image_generation"}
        declared.setdefault("concurrency_key", model_key(record))
        accepts: frozenset[str] = declared.pop("accepts", cls.accepts)
        if record.modalities is not None and record.modalities.input:
            # The record says what the model takes (gpt-3.5 text, gpt-4o text and images): a
            # backend that could send an image still refuses one for a text-only model.
            accepts = (accepts & frozenset(record.modalities.input)) or accepts
        declared["accepts"] = accepts
        declared.setdefault("outputs", outputs_of(capabilities))
        return BackendFacts(capabilities=capabilities, **declared)

    @classmethod
    def completes_text(cls, record: ModelRecord) -> bool:
        """Whether ``record``'s model can continue a plain text (OpenAI's legacy completions);
        a backend whose provider answers some models in chat only says no for those."""
        return True

    @classmethod
    def options_of(cls, record: ModelRecord) -> BackendOptions:
        """``record``'s options parsed into this backend's Options, for declaring its facts.

        Lenient where :meth:`parse_options` is strict: facts are asked of every catalog record,
        and a record with a bad option still has facts (loading it fails, naming the option)."""
        raw = dict(record.options or {})
        for _ in range(2):  # once as given, once without the options that failed
            try:
                return cls.Options.model_validate(raw)
            except ValidationError as exc:
                bad = {err["loc"][0] for err in exc.errors() if err["loc"]}
                raw = {k: v for k, v in raw.items() if k not in bad}
        return cls.Options.model_construct()

    @classmethod
    def options_for(cls, **values: Any) -> dict[str, Any]:
        """A record's ``options`` built from typed values: validated here, and only the values
        that differ from the defaults kept (what a catalog source stores on its records)."""
        return cls.parse_options(values).model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def with_parallel(cls, record: ModelRecord, n: int) -> ModelRecord:
        """``record`` set to decode ``n`` requests together; as is where the backend does not batch."""
        return record

    @classmethod
    def batch_invariant(cls) -> bool:
        """Whether a request decoded beside others gets exactly the answer it gets alone."""
        return False

    @classmethod
    def parse_options(cls, raw: dict[str, Any] | None) -> BackendOptions:
        try:
            return cls.Options.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}" for err in exc.errors()
            )
            allowed = ", ".join(cls.Options.model_fields) or "none"
            raise ConfigError(
                f"Bad options for the {cls.name!r} backend: {problems}.",
                hint=f"Allowed options: {allowed}.",
            ) from None

    def load(self) -> None:
        """Load weights or open clients ahead of the first call (blocking, idempotent).

        The Model wrapper runs it in a worker thread before it starts timing, so time to first
        token measures generation, not loading. The default does nothing.
        """

    def identity(self) -> str:
        """What makes this model's answers what they are, for the response cache.

        The default is the backend, the location and the options; backends with a model file
        use its hash, hosted ones their base URL and remote model name.
        """
        data = {
            "backend": self.name,
            "location": self.location,
            "options": self.options.model_dump(mode="json"),
        }
        return json.dumps(data, sort_keys=True)

    @property
    def context_length(self) -> int | None:
        """The context window in tokens, when known."""
        return None

    @abstractmethod
    async def generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        """The whole answer at once."""

    async def stream(self, prompt: Prompt, params: GenerationParams) -> AsyncIterator[Chunk]:
        """The answer piece by piece; the last chunk has ``finish_reason`` and usage."""
        completion = await self.generate(prompt, params)
        yield Chunk(text=completion.text)
        yield Chunk(finish_reason=completion.finish_reason, usage=completion.usage)

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        raise ConfigError(
            f"{self.model_id} does not make embeddings.",
            hint="Pick an embedding model, for example local/all-minilm-l6-v2.",
        )

    async def transcribe(self, audio: AudioPart, params: TranscribeParams) -> Transcript:
        """Speech to text: the transcript of ``audio`` with its language, duration and timed
        segments, and ``usage.audio_seconds`` set. Backends that can add "transcription" to
        their capabilities."""
        raise ConfigError(
            f"{self.model_id} does not transcribe speech.",
            hint="Pick a speech-recognition model, for example local/whisper-base "
            "(`modelatlas catalog search --task speech-recognition`).",
        )

    async def generate_image(
        self, prompt: str, params: ImageParams, progress: Progress | None = None
    ) -> Images:
        """Text to image: ``params.n`` pictures of ``prompt`` with ``usage.images`` set.
        ``progress(done, total)`` is called from the worker as denoising steps finish (local
        pipelines; hosted ones may never call it). Backends that can add "image_generation"
        to their capabilities."""
        raise ConfigError(
            f"{self.model_id} does not make images.",
            hint="Pick an image-generation model (`modelatlas catalog search --task image-generation`).",
        )

    async def loglikelihood(self, context: str, continuation: str) -> LogLikelihood:
        raise ConfigError(
            f"{self.model_id} does not give log-probabilities.",
            hint="Use a local model (llamacpp or transformers backend) for log-likelihood scoring.",
        )

    async def token_logprobs(
        self, prompt: str | list[int], params: GenerationParams | None, top: int, echo: bool
    ) -> TokenLogprobs:
        """The completion of ``prompt`` (none when ``params`` is None) with each token's
        log-probability and the ``top`` likeliest tokens; with ``echo``, the prompt's tokens too.
        A prompt may be token ids. Backends that can set ``has_token_logprobs``."""
        raise ConfigError(
            f"{self.model_id} does not give the log-probabilities of tokens.",
            hint="Use a local GGUF model (llamacpp backend) for echo and logprobs.",
        )

    # The request fields beyond plain sampling (GenerationParams after ``seed``) this backend
    # honours; check_params refuses the others with a 400 naming the field, never ignoring one.
    honours: ClassVar[frozenset[str]] = frozenset()

    def check_params(self, params: GenerationParams) -> None:
        """Refuse a setting this model would not honour, naming it (the Model wrapper calls
        this before any cache look-up or call). A backend that honours some settings only for
        some models (tools where the chat template has them) overrides this."""
        if params.plain:
            return
        asked = params.model_dump(
            exclude_defaults=True, exclude={"max_tokens", "temperature", "top_p", "stop", "seed"}
        )
        for name in asked:
            if name not in self.honours:
                raise InvalidRequestError(
                    f"'{name}' is not supported by {self.model_id} ({self.name} backend).",
                    hint=f"Leave '{name}' out, or use a model that supports it (local GGUF or hosted).",
                    param=name,
                )

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text``; backends without a tokenizer estimate about 4 characters each."""
        return max(1, len(text) // 4) if text else 0

    def count_prompt_tokens(self, prompt: Prompt, params: GenerationParams | None = None) -> int:
        """Tokens the model reads for ``prompt``: a backend that applies a chat template counts
        the templated prompt (what a context-length check must compare); the default counts
        each message's text. Blocking: callers run it in a worker thread."""
        texts = [prompt] if isinstance(prompt, str) else [m.text for m in prompt]
        return sum(self.count_tokens(t) for t in texts if t)

    # -- the model's own tokenizer (serve's /tokenize, /detokenize and /tokenizer_info) -------
    # Blocking: callers run them in a worker thread. A backend without a tokenizer of its own
    # (a hosted model: its tokens are the provider's) refuses, rather than guess.

    def prompt_tokens(self, prompt: Prompt, params: GenerationParams | None = None) -> list[int]:
        """The token ids the model reads for ``prompt``: chat messages through its chat
        template, with ``params.tools`` rendered where it takes tools (serve's /tokenize)."""
        raise self._no_tokenizer()

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """The token ids of ``text`` (special tokens written in it are parsed as such, as
        Hugging Face tokenizers do); ``add_special`` adds what the model puts around a text (BOS)."""
        raise self._no_tokenizer()

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens`` (special tokens written out); an id outside the vocabulary is
        an InvalidRequestError naming ``tokens[i]``."""
        raise self._no_tokenizer()

    def tokenizer_facts(self) -> TokenizerFacts:
        raise self._no_tokenizer()

    def _no_tokenizer(self) -> InvalidRequestError:
        return InvalidRequestError(
            f"{self.model_id} ({self.name} backend) does not expose its tokenizer here.",
            hint="Tokenize with a local model (a GGUF file or a transformers folder), or with the "
            "provider's own tools.",
            param="model",
        )

    async def embed_input(
        self,
        inputs: Sequence[str] | Sequence[Sequence[int]],
        dimensions: int | None = None,
        truncate: bool = False,
    ) -> Embeddings:
        """Embeddings of texts or of token ids (the model's own, as :meth:`tokenize` gives them),
        shortened to ``dimensions``; an input longer than the model's window is refused unless
        ``truncate``. The default takes texts only, at full size, and cannot see the window."""
        if dimensions is not None:
            raise no_dimensions(self.model_id)
        if any(not isinstance(item, str) for item in inputs):
            raise InvalidRequestError(
                f"{self.model_id} ({self.name} backend) does not take token ids to embed.",
                hint="Send the texts instead.",
                param="input",
            )
        return await self.embed([str(item) for item in inputs])

    async def aclose(self) -> None:
        """Release clients and handles. The default holds nothing."""


_FLAGS = {
    "can_stream": "stream",
    "can_embed": "embeddings",
    "has_logprobs": "loglikelihood",
    "has_token_logprobs": "token_logprobs",
}


def _declare(cls: type[Backend]) -> None:
    """Make a backend class's flags and its ``capabilities`` agree; the class's own say wins."""
    own = cls.__dict__
    if "capabilities" not in own and any(flag in own for flag in _FLAGS):
        names = set(cls.capabilities)
        for flag, capability in _FLAGS.items():
            if flag in own:
                (names.add if own[flag] else names.discard)(capability)
        cls.capabilities = frozenset(names)
    if "accepts" not in own and "modalities" in own:
        cls.accepts = frozenset(own["modalities"])
    for flag, capability in _FLAGS.items():
        setattr(cls, flag, capability in cls.capabilities)
    cls.modalities = tuple(kind for kind in PART_KINDS if kind in cls.accepts)


def no_dimensions(model_id: str) -> InvalidRequestError:
    """The refusal of ``dimensions`` for a model whose vectors have one size only."""
    return InvalidRequestError(
        f"{model_id} does not support shortened embeddings: 'dimensions' cannot be set for it.",
        hint="Leave 'dimensions' out (you get the model's full vectors), or use a model trained for "
        "it (OpenAI's text-embedding-3 models).",
        param="dimensions",
    )


def too_long(where: str, n_tokens: int, window: int, model_id: str) -> InvalidRequestError:
    """The refusal of an input to embed that is longer than the model's window."""
    return InvalidRequestError(
        f"'{where}' has {n_tokens} tokens, more than the {window} tokens {model_id} reads at once.",
        hint='Send shorter text, or set "truncate": true to embed its first tokens only.',
        param=where,
    )


@functools.cache
def outputs_of(capabilities: frozenset[str]) -> frozenset[str]:
    """The output modalities that follow from what a model can do."""
    made = {
        "generate": "text",
        "transcription": "text",
        "embeddings": "embedding",
        "image_generation": "image",
    }
    return frozenset(out for capability, out in made.items() if capability in capabilities)


async def collect(chunks: AsyncIterator[Chunk], model_id: str) -> Completion:
    """A whole Completion from a stream whose last chunk carries finish reason, usage and timing."""
    parts: list[str] = []
    calls: list[ToolCall] = []
    logprobs: list[TokenLogprob] | None = None
    last = Chunk()
    async for chunk in chunks:
        parts.append(chunk.text)
        calls.extend(chunk.tool_calls)
        if chunk.logprobs is not None:
            logprobs = (logprobs or []) + chunk.logprobs
        last = chunk
    return Completion(
        text="".join(parts),
        model=model_id,
        finish_reason=last.finish_reason or "stop",
        usage=last.usage or Usage(),
        timing=last.timing or Timing(),
        tool_calls=tuple(calls),
        logprobs=logprobs,
    )
