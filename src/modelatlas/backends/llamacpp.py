"""GGUF models through llama-cpp-python, in this process.

Chat uses the file's own chat template; a plain string is completed as is. Every caller of
the same file shares one loaded engine, whose own thread runs the calls one at a time: concurrent
async callers never interleave, and the event loop stays free. With the option ``parallel``
above 1, generations without log-probabilities go through the engine's batcher instead
(llamacpp_batch): up to ``parallel`` of them decode together, one step at a time on that thread.
With a multimodal projector (an mmproj*.gguf beside the file, or the option ``mmproj``) the
model takes images too (llamacpp_vision).
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import threading
from collections.abc import AsyncIterator, Sequence

from pydantic import Field

from modelatlas.backends import grammars, llama_adapter, llamacpp_tokens, llamacpp_vision, tool_calls
from modelatlas.backends.base import (
    Backend,
    BackendOptions,
    TokenizerFacts,
    TokenLogprobs,
    as_messages,
    collect,
    no_dimensions,
)
from modelatlas.backends.channel import Channel, Done, Failed, Text, WorkerMessage
from modelatlas.backends.declared import BackendFacts, weights_bytes
from modelatlas.backends.llamacpp_batch import Request
from modelatlas.backends.llamacpp_engine import (
    Engine,
    Sampling,
    TokenScore,
    acquire_engine,
    release_engine,
)
from modelatlas.errors import ConfigError, InvalidRequestError
from modelatlas.types import (
    Chunk,
    Completion,
    Embeddings,
    GenerationParams,
    LogLikelihood,
    Prompt,
    Usage,
)


class LlamaCppOptions(BackendOptions):
    n_ctx: int | None = Field(None, ge=16, description="context window; default: trained, capped at 8192")
    n_threads: int | None = Field(None, ge=1)
    parallel: int = Field(
        1, ge=1, le=64, description="sequences decoded together (continuous batching); 1: one at a time"
    )
    mmproj: str | None = Field(None, description="multimodal projector .gguf; default: mmproj*.gguf beside")


class LlamaCppBackend(Backend):
    name = "llamacpp"
    Options = LlamaCppOptions
    capabilities = frozenset(
        {"generate", "stream", "embeddings", "loglikelihood", "token_logprobs", "structured_output"}
    )
    honours = frozenset(
        {"presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "response_format"}
        | {"tools", "tool_choice", "parallel_tool_calls"}  # refused where the template has no tools
    )

    # Every local llama.cpp model decodes on one shared engine thread that already uses every
    # core: more than one call in flight only queues and inflates each one's measured latency.
    ENGINE_KEY = "llamacpp-engine"

    @classmethod
    def facts(cls, record) -> BackendFacts:
        options = cls.options_of(record)
        vision = llamacpp_vision.projector_path(record.location, options.mmproj) is not None
        return cls.declare(
            record,
            accepts=frozenset({"text", "image"}) if vision else cls.accepts,
            local=True,
            concurrency_key=cls.ENGINE_KEY,
            max_connections=1,
            batches=True,
            parallel=options.parallel,
            trainable=bool(record.location),
            memory_bytes=weights_bytes(record),
            file_format="gguf",
        )

    @classmethod
    def with_parallel(cls, record, n: int):
        return record.model_copy(update={"options": {**record.options, "parallel": n}})

    @classmethod
    def batch_invariant(cls) -> bool:
        return llama_adapter.batch_invariant()

    def __init__(self, model_id: str, location: str | None, options: LlamaCppOptions):
        if not location:
            raise ConfigError(f"{model_id}: the llamacpp backend needs the path of a .gguf file.")
        super().__init__(model_id, location, options)
        self.engine: Engine = acquire_engine(location, options.n_ctx, options.n_threads)
        self._embedder: Engine | None = None
        self._released = False

    def load(self) -> None:
        self.engine.submit(lambda: self.engine.llm).result()
        if self.options.parallel > 1:
            self.engine.submit(self.engine.batcher, self.options.parallel).result()

    def identity(self) -> str:
        from modelatlas.backends.identity import fingerprint

        projector = llamacpp_vision.projector_path(self.location, self.options.mmproj)
        base = f"llamacpp:{fingerprint(self.location)}"
        return f"{base}:mmproj={fingerprint(str(projector))}" if projector else base

    @property
    def context_length(self) -> int:
        return self.engine.n_ctx

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def count_prompt_tokens(self, prompt: Prompt, params: GenerationParams | None = None) -> int:
        """The prompt's tokens as the engine reads them: chat messages through the chat template
        (SmolLM2's adds 26 tokens to a one-message chat; "Hi" alone is 1)."""
        if llamacpp_vision.has_images(prompt):  # the projector's positions are counted when it runs
            return super().count_prompt_tokens(prompt, params)
        return len(self.prompt_tokens(prompt, params))

    def prompt_tokens(self, prompt: Prompt, params: GenerationParams | None = None) -> list[int]:
        offered = params is not None and tool_calls.check_tools(self.model_id, self.location or "", params)
        return self._tokens(prompt, tool_calls.rendered_tools(params) if offered else None)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return llamacpp_tokens.tokenize(self.engine, text, add_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return llamacpp_tokens.detokenize(self.engine, tokens)

    def tokenizer_facts(self) -> TokenizerFacts:
        return llamacpp_tokens.facts(self.engine)

    async def generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        return await collect(self.stream(prompt, params), self.model_id)

    def check_params(self, params: GenerationParams) -> None:
        tool_calls.check_tools(self.model_id, self.location or "", params)
        super().check_params(params)

    async def stream(self, prompt: Prompt, params: GenerationParams) -> AsyncIterator[Chunk]:
        """The answer's chunks; where tools are offered, the calls the model wrote come out of
        the text as tool calls (tool_calls.parse_stream)."""
        fmt = tool_calls.check_tools(self.model_id, self.location or "", params)
        tools = tool_calls.rendered_tools(params) if fmt is not None else None
        if tools and llamacpp_vision.has_images(prompt):
            raise InvalidRequestError(
                f"{self.model_id} cannot take 'tools' and images in one request.", param="tools"
            )
        chunks = self._chunks(prompt, params, fmt, tools)
        parsed = chunks if fmt is None else tool_calls.parse_stream(chunks, fmt, params)
        try:
            async for chunk in parsed:
                yield chunk
        finally:  # a caller that left stops the generation now, not when the loop collects it
            await parsed.aclose()
            await chunks.aclose()

    async def _chunks(self, prompt: Prompt, params: GenerationParams, fmt, tools) -> AsyncIterator[Chunk]:
        channel: Channel[WorkerMessage] = Channel(asyncio.get_running_loop())
        cancel = threading.Event()
        sampling = _sampling(params)
        forced = tool_calls.grammar_for(params, fmt) if fmt not in (None, tool_calls.HERMES) else None
        if forced is not None:  # _sampling's forced call is written Hermes' way
            sampling = dataclasses.replace(sampling, grammar=forced)
        if llamacpp_vision.has_images(prompt):  # through the multimodal projector, answered whole
            self.engine.submit(llamacpp_vision.run, self, prompt, sampling, cancel, channel)
        elif self.options.parallel > 1 and sampling.plain:  # the batcher samples plainly
            self.engine.submit(self._enqueue, prompt, sampling, cancel, channel, tools)
        else:
            self.engine.submit(self._run, prompt, sampling, cancel, channel, tools)
        try:
            while True:
                parts, logprobs, done = [], [], None
                for message in await channel.get():  # what arrived together goes out in one chunk
                    match message:
                        case Text(text=piece):
                            parts.append(piece)
                            logprobs.extend(message.logprobs)
                        case Done():
                            done = message
                        case Failed(error=error):
                            raise error
                if parts:
                    asked = sampling.logprobs is not None
                    yield Chunk(text="".join(parts), logprobs=logprobs if asked else None)
                if done is not None:
                    usage = Usage(input_tokens=done.input_tokens, output_tokens=done.output_tokens)
                    yield Chunk(finish_reason=done.finish_reason, usage=usage)
                    return
        finally:
            cancel.set()

    def _run(
        self, prompt: Prompt, sampling: Sampling, cancel: threading.Event, channel: Channel, tools=None
    ) -> None:
        """One generation alone, start to end (on the engine thread)."""
        try:
            if cancel.is_set():  # the caller left while this call waited its turn
                return
            tokens = self._tokens(prompt, tools)
            self.engine.check_fits(self.model_id, len(tokens), sampling.max_tokens)
            if sampling.logit_bias:
                self.engine.check_token_ids([token for token, _ in sampling.logit_bias], "logit_bias")
            emit = _feeder(channel)
            for message in self.engine.generate(tokens, sampling, cancel):
                emit(message)
        except BaseException as exc:  # whatever it is, the caller must hear of it
            channel.put(Failed(exc), urgent=True)

    def _enqueue(
        self, prompt: Prompt, sampling: Sampling, cancel: threading.Event, channel: Channel, tools=None
    ) -> None:
        """Hand the generation to the engine's batcher (on the engine thread)."""
        try:
            if cancel.is_set():
                return
            tokens = self._tokens(prompt, tools)
            self.engine.check_fits(self.model_id, len(tokens), sampling.max_tokens)
            batcher = self.engine.batcher(self.options.parallel)
            emit = _feeder(channel)
            if batcher.fits(len(tokens) + sampling.max_tokens):
                batcher.add(Request(tokens, sampling, cancel, emit))
                return
            for message in self.engine.generate(tokens, sampling, cancel):  # too long for a slot
                emit(message)
        except BaseException as exc:  # whatever it is, the caller must hear of it
            channel.put(Failed(exc), urgent=True)

    def _tokens(self, prompt: Prompt, tools: list[dict] | None = None) -> list[int]:
        """The prompt's tokens, with the ``tools`` rendered by the chat template; never none
        (a generation needs a token to start from)."""
        if isinstance(prompt, str):
            tokens = self.engine.text_tokens(prompt)
            what = "'prompt' is empty"
        else:
            tokens = self.engine.chat_tokens(tool_calls.template_messages(as_messages(prompt)), tools)
            what = "'messages' rendered with the chat template give no tokens"
        if not tokens:
            raise InvalidRequestError(
                f"{what}: there is nothing to generate from.", hint="Send a prompt with some text."
            )
        return tokens

    async def loglikelihood(self, context: str, continuation: str) -> LogLikelihood:
        job = self.engine.submit(self.engine.loglikelihood, context, continuation)
        logprob, greedy, n = await asyncio.wrap_future(job)
        return LogLikelihood(logprob=logprob, is_greedy=greedy, tokens=n)

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        engine = self._embedding_engine()
        vectors, tokens = await asyncio.wrap_future(engine.submit(engine.embed, list(texts)))
        return Embeddings(vectors=vectors, model=self.model_id, usage=Usage(input_tokens=tokens))

    async def embed_input(self, inputs, dimensions: int | None = None, truncate: bool = False) -> Embeddings:
        """Texts or token ids, each checked against the window llama-cpp-python's embed reads
        (the context, and at most one batch: it cuts longer input silently)."""
        if dimensions is not None:
            raise no_dimensions(self.model_id)
        engine = self._embedding_engine()

        def texts() -> list[str]:
            window = min(engine.n_ctx, engine.llm.n_batch)
            return llamacpp_tokens.texts_for(engine, self.model_id, inputs, window, truncate)

        return await self.embed(await asyncio.wrap_future(engine.submit(texts)))

    def _embedding_engine(self) -> Engine:
        if self._embedder is None:
            o = self.options
            self._embedder = acquire_engine(self.location, o.n_ctx, o.n_threads, embedding=True)
        return self._embedder

    async def aclose(self) -> None:
        """Free the model's memory, unless another backend of the same file still uses it."""
        if self._released:
            return
        self._released = True
        for engine in (self.engine, self._embedder):
            if engine is not None:
                await asyncio.wrap_future(release_engine(engine))

    # -- log-probabilities of tokens (OpenAI's echo and logprobs) ------------------------------

    async def token_logprobs(
        self, prompt: str | list[int], params: GenerationParams | None, top: int, echo: bool
    ) -> TokenLogprobs:
        cancel = threading.Event()
        job = self.engine.submit(self._token_logprobs, prompt, params, top, echo, cancel)
        try:
            return await asyncio.wrap_future(job)
        finally:
            cancel.set()  # a caller that left stops the generation at the next token

    def _token_logprobs(self, prompt, params, top: int, echo: bool, cancel) -> TokenLogprobs:
        engine = self.engine
        tokens, hidden = self._scored_tokens(prompt)
        engine.check_fits(self.model_id, len(tokens), params.max_tokens if params else 0)
        scores = engine.score(tokens, hidden, top) if echo else []
        text, finish, n_out, generated = "", "length", 0, []
        if params is not None:
            sampling = _sampling(params)
            parts = []
            for message in engine.generate(tokens, sampling, cancel, generated, top):
                match message:
                    case Text(text=piece):
                        parts.append(piece)
                    case Done():
                        finish, n_out = message.finish_reason, message.output_tokens
            text = "".join(parts)
        prompt_text = prompt if isinstance(prompt, str) else _decode(engine, tokens[hidden:])
        columns = _columns(engine, scores, 0)
        made = _columns(engine, generated, len(prompt_text))
        kept = sum(1 for offset in made["text_offset"] if offset < len(prompt_text) + len(text))
        for name, values in made.items():  # tokens past a stop sequence are not in the text
            columns[name] += values[:kept]
        usage = Usage(input_tokens=len(tokens), output_tokens=n_out)
        return TokenLogprobs(prompt=prompt_text, text=text, finish_reason=finish, usage=usage, **columns)

    def _scored_tokens(self, prompt: str | list[int]) -> tuple[list[int], int]:
        """The tokens to evaluate and how many of them lead it unasked (a BOS the model needs)."""
        engine = self.engine
        if isinstance(prompt, str):
            tokens = engine.text_tokens(prompt)
            hidden = 1 if engine.adds_bos() and tokens else 0
        else:
            n_vocab = engine.llm.n_vocab()
            if any(t < 0 or t >= n_vocab for t in prompt):
                raise InvalidRequestError(
                    f"'prompt' has a token id outside the vocabulary of {self.model_id} (0 to {n_vocab - 1})."
                )
            bos = engine.llm.token_bos()
            hidden = 1 if engine.adds_bos() and prompt[:1] != [bos] else 0
            tokens = [bos] * hidden + list(prompt)
        if len(tokens) <= hidden:
            raise InvalidRequestError("'prompt' is empty: there is nothing to score or complete.")
        return tokens, hidden


def _sampling(params: GenerationParams) -> Sampling:
    """The engine's sampling settings; a seed it cannot use, or a schema the grammar cannot
    enforce, fails here, before any work."""
    seed = params.seed
    if seed is not None and not 0 <= seed < 2**63:
        raise InvalidRequestError(
            f"'seed' must be between 0 and 2**63 - 1, not {seed}.", hint="Send a non-negative integer seed."
        )
    return Sampling(
        params.max_tokens,
        params.temperature,
        params.top_p,
        params.stop,
        seed,
        grammar=_grammar(params),
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        logit_bias=params.logit_bias,
        logprobs=params.logprobs,
    )


def _grammar(params: GenerationParams) -> str | None:
    """What the answer must follow: a well-formed tool call when one is required (tool_choice
    "required" or a function's name), else the response format's JSON shape, else nothing."""
    if params.tools and params.tool_choice not in ("auto", "none"):
        from modelatlas.backends import tool_calls

        return tool_calls.grammar_for(params)
    return grammars.response_grammar(params.response_format)


def _feeder(channel: Channel[WorkerMessage]):
    """What hands a generation's messages to the channel: the first text and the end at once."""
    first = True

    def emit(message: WorkerMessage) -> None:
        nonlocal first
        channel.put(message, urgent=first or not isinstance(message, Text))
        first = False

    return emit


def _columns(engine: Engine, scores: list[TokenScore], start: int) -> dict[str, list]:
    """OpenAI's logprobs columns for ``scores``, whose text starts at character ``start``."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    columns: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    offset = start
    for score in scores:
        piece = engine.piece(score.token)
        columns["tokens"].append(_token_text(piece))
        columns["token_logprobs"].append(score.logprob)
        columns["top_logprobs"].append(_top(engine, score))
        columns["text_offset"].append(offset)
        offset += len(decoder.decode(piece))
    return columns


def _top(engine: Engine, score: TokenScore) -> dict[str, float] | None:
    if score.logprob is None:
        return None
    top: dict[str, float] = {}
    for token, logprob in (score.top or {}).items():
        top.setdefault(_token_text(engine.piece(token)), logprob)  # best first: keep the higher
    return top


def _token_text(piece: bytes) -> str:
    """A token's text; a token that is part of a UTF-8 character is written as its bytes."""
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in piece)


def _decode(engine: Engine, tokens: list[int]) -> str:
    return b"".join(engine.piece(t) for t in tokens).decode("utf-8", errors="replace")
