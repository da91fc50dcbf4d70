"""The transformers backend: Hugging Face model folders and .gguf files run with PyTorch.

A causal language model answers chats (through its chat template) and completions; a
sequence-to-sequence model (T5 style) maps the prompt to its decoder output; an embedding model
(a sentence-transformers folder or an encoder such as BERT, mean pooled) makes vectors; a
vision-language folder takes images too (:mod:`modelatlas.backends.hf_vision`).
torch, transformers and sentence-transformers are imported on first use. Each model is loaded
once and shared (see :mod:`modelatlas.backends.hf_load`); its lock keeps callers from
interleaving, and the work runs in a thread so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from modelatlas.backends import hf_tokens
from modelatlas.backends.base import (
    Backend,
    BackendOptions,
    TokenizerFacts,
    as_messages,
    no_dimensions,
    require,
)
from modelatlas.backends.declared import BackendFacts, weights_bytes
from modelatlas.backends.hf_load import Loaded, is_vision_folder, load
from modelatlas.backends.stops import StopScanner, first_stop
from modelatlas.errors import ConfigError, ContextLengthExceededError
from modelatlas.types import (
    Chunk,
    Completion,
    Embeddings,
    GenerationParams,
    LogLikelihood,
    Prompt,
    Usage,
)

DTYPES = ("float32", "float16", "bfloat16", "auto")


class TransformersOptions(BackendOptions):
    task: Literal["auto", "causal", "seq2seq", "embedding", "vision"] = "auto"
    dtype: str = "float32"
    threads: int | None = Field(None, ge=1)  # torch's thread count, which is process-wide
    max_length: int | None = Field(None, ge=1)
    normalize: bool = True
    adapter: str | None = None  # a LoRA adapter folder (peft), merged into the model on load

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        if value not in DTYPES:
            raise ValueError(f"must be one of {', '.join(DTYPES)}")
        return value


@dataclass
class Outcome:
    """What one generation produced, before stop strings are applied."""

    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    hit_eos: bool = False
    error: BaseException | None = None


class TransformersBackend(Backend):
    name = "transformers"
    Options = TransformersOptions
    capabilities = frozenset({"generate", "stream", "embeddings", "loglikelihood"})

    @classmethod
    def facts(cls, record) -> BackendFacts:
        options = cls.options_of(record)
        capabilities = cls.capabilities
        if options.task == "embedding":  # a sentence-transformers model: vectors only
            capabilities = capabilities & {"embeddings"}
        gguf = (record.location or "").lower().endswith(".gguf")
        vision = options.task == "vision" or (options.task == "auto" and is_vision_folder(record.location))
        return cls.declare(
            record,
            accepts=frozenset({"text", "image"}) if vision else cls.accepts,
            local=True,
            trainable=bool(record.location),
            adapter=bool(options.adapter),
            capabilities=capabilities,
            memory_bytes=weights_bytes(record),
            file_format="gguf" if gguf else "huggingface",
        )

    def __init__(self, model_id: str, location: str | None, options: TransformersOptions):
        super().__init__(model_id, location, options)
        self._model: Loaded | None = None

    # -- loading and facts -------------------------------------------------------------------

    def loaded(self) -> Loaded:
        """The shared loaded model (loaded here, blocking, on first use)."""
        if self._model is None:
            if not self.location:
                raise ConfigError(f"{self.model_id} has no location: a model folder or .gguf file.")
            o = self.options
            self._model = load(self.location, o.task, o.dtype, o.threads, o.adapter)
        return self._model

    def load(self) -> None:
        self.loaded()

    async def aclose(self) -> None:
        """Let the shared model go (its memory is freed once no other backend holds it)."""
        if self._model is not None:
            from modelatlas.backends.hf_load import release

            o = self.options
            release(self.location, o.task, o.dtype, o.threads, o.adapter)
            self._model = None

    def identity(self) -> str:
        from modelatlas.backends.identity import fingerprint

        o = self.options
        base = f"transformers:{o.task}:{o.dtype}:{fingerprint(self.location)}"
        return f"{base}:adapter={fingerprint(o.adapter)}" if o.adapter else base

    async def _load(self) -> Loaded:
        return self._model or await asyncio.to_thread(self.loaded)

    @property
    def context_length(self) -> int | None:
        """The max_length option, else the model's own window (this loads the model)."""
        return self.options.max_length or self.loaded().context_length

    def count_tokens(self, text: str) -> int:
        loaded = self.loaded()
        # Embedding calls set the tokenizer's padding and truncation: wait for them. Other
        # kinds only read the tokenizer, so counting need not wait for a generation.
        with loaded.lock if loaded.kind == "embedding" else contextlib.nullcontext():
            return len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- generation ----------------------------------------------------------------------------

    async def generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        loaded = self._generator(await self._load())
        out = await asyncio.to_thread(self._generate_locked, loaded, prompt, params, None, None)
        scanner = StopScanner(params.stop)
        text = scanner.feed(out.text) + scanner.flush()
        return Completion(
            text=text,
            model=self.model_id,
            finish_reason=_finish(out, params, scanner.stopped),
            usage=Usage(input_tokens=out.input_tokens, output_tokens=out.output_tokens),
        )

    async def stream(self, prompt: Prompt, params: GenerationParams) -> AsyncIterator[Chunk]:
        loaded = self._generator(await self._load())
        transformers = require("transformers", extra="finetune")
        streamer = transformers.TextIteratorStreamer(
            loaded.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        halt, box = threading.Event(), Outcome()
        worker = threading.Thread(
            target=self._stream_worker, args=(loaded, prompt, params, streamer, halt, box), daemon=True
        )
        worker.start()
        scanner = StopScanner(params.stop)
        try:
            while not scanner.stopped and (piece := await asyncio.to_thread(_next_piece, streamer)):
                if text := scanner.feed(piece):
                    yield Chunk(text=text)
        finally:
            halt.set()  # stops the worker at the next token when the caller leaves early
        await asyncio.to_thread(worker.join)
        if box.error is not None:
            raise box.error
        if rest := scanner.flush():
            yield Chunk(text=rest)
        usage = Usage(input_tokens=box.input_tokens, output_tokens=box.output_tokens)
        yield Chunk(finish_reason=_finish(box, params, scanner.stopped), usage=usage)

    def _stream_worker(self, loaded, prompt, params, streamer, halt, box: Outcome) -> None:
        try:
            out = self._generate_locked(loaded, prompt, params, streamer, halt)
            box.input_tokens, box.output_tokens = out.input_tokens, out.output_tokens
            box.hit_eos = out.hit_eos
        except BaseException as exc:  # handed to the async side, which raises it
            box.error = exc
            streamer.end()

    def _generate_locked(self, loaded: Loaded, prompt, params, streamer, halt) -> Outcome:
        if loaded.kind == "vision":  # the prompt goes through the processor, with its images
            from modelatlas.backends.hf_vision import generate_locked

            return generate_locked(self, loaded, prompt, params, streamer, halt)
        torch = require("torch", extra="finetune")
        with loaded.lock, torch.inference_mode():
            ids = self._encode_prompt(loaded, prompt)
            self._check_context(loaded, len(ids), params.max_tokens)
            input_ids = torch.tensor([ids])
            start = len(ids) if loaded.kind == "causal" else 1  # seq2seq: after the start token
            criterion = Halt(loaded.tokenizer, params.stop, start, halt or threading.Event())
            kwargs = _sampling(torch, params)
            output = loaded.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=params.max_tokens,
                pad_token_id=loaded.tokenizer.pad_token_id,
                stopping_criteria=[criterion],
                streamer=streamer,
                **kwargs,
            )
            new = output[0, start:].tolist()
            text = loaded.tokenizer.decode(new, skip_special_tokens=True)
            return Outcome(text, len(ids), len(new), bool(new) and new[-1] in _eos_ids(loaded))

    def _encode_prompt(self, loaded: Loaded, prompt: Prompt) -> list[int]:
        tokenizer = loaded.tokenizer
        if not isinstance(prompt, str) and loaded.kind == "causal" and tokenizer.chat_template:
            text = tokenizer.apply_chat_template(
                as_messages(prompt), add_generation_prompt=True, tokenize=False
            )
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            text = prompt if isinstance(prompt, str) else "\n".join(m.text for m in prompt)
            ids = tokenizer(text)["input_ids"]
        fallback = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return list(ids) or [fallback]

    def _check_context(self, loaded: Loaded, prompt_tokens: int, max_tokens: int) -> None:
        limit = self.options.max_length or loaded.context_length
        # A seq2seq model's output has its own window: only the prompt must fit.
        needed = prompt_tokens + (max_tokens if loaded.kind in ("causal", "vision") else 0)
        if limit and needed > limit:
            raise ContextLengthExceededError(self.model_id, prompt_tokens, max_tokens, limit)

    def _generator(self, loaded: Loaded) -> Loaded:
        if loaded.kind == "embedding":
            raise ConfigError(
                f"{self.model_id} is an embedding model: it only makes embeddings.",
                hint="Call embed() with it, or pick a chat or completion model to generate text.",
            )
        return loaded

    # -- log-likelihood ------------------------------------------------------------------------

    async def loglikelihood(self, context: str, continuation: str) -> LogLikelihood:
        loaded = self._generator(await self._load())
        return await asyncio.to_thread(self._loglikelihood_locked, loaded, context, continuation)

    def _loglikelihood_locked(self, loaded: Loaded, context: str, continuation: str) -> LogLikelihood:
        torch = require("torch", extra="finetune")
        with loaded.lock, torch.inference_mode():
            if loaded.kind == "seq2seq":
                logits, targets = self._seq2seq_logits(loaded, context, continuation)
            else:
                logits, targets = self._causal_logits(loaded, context, continuation)
            if not targets:
                return LogLikelihood(logprob=0.0, is_greedy=True, tokens=0)
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            wanted = torch.tensor(targets)
            picked = logprobs.gather(-1, wanted.unsqueeze(-1)).squeeze(-1)
            greedy = bool((logprobs.argmax(dim=-1) == wanted).all())
            return LogLikelihood(logprob=float(picked.sum()), is_greedy=greedy, tokens=len(targets))

    def _causal_logits(self, loaded: Loaded, context: str, continuation: str):
        """The logits that predict each continuation token, and those tokens."""
        torch = require("torch", extra="finetune")
        tokenizer = loaded.tokenizer
        whole = list(tokenizer(context + continuation)["input_ids"])
        head = list(tokenizer(context)["input_ids"]) if context else []
        if not head:  # condition on the start (or end) of text token
            start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
            head, whole = [start], [start, *whole]
        targets = whole[len(head) :]
        self._check_context(loaded, len(whole) - 1, 0)
        logits = loaded.model(torch.tensor([whole[:-1]])).logits[0]
        return logits[len(head) - 1 :], targets

    def _seq2seq_logits(self, loaded: Loaded, context: str, continuation: str):
        torch = require("torch", extra="finetune")
        tokenizer = loaded.tokenizer
        source = list(tokenizer(context)["input_ids"])
        targets = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
        self._check_context(loaded, len(source), 0)
        if not targets:
            return None, []
        labels = torch.tensor([targets])
        logits = loaded.model(input_ids=torch.tensor([source]), labels=labels).logits[0]
        return logits, targets

    # -- embeddings ----------------------------------------------------------------------------

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        loaded = await self._load()
        if loaded.kind != "embedding":
            return await super().embed(texts)
        vectors, tokens = await asyncio.to_thread(self._embed_locked, loaded, list(texts))
        return Embeddings(vectors=vectors, model=self.model_id, usage=Usage(input_tokens=tokens))

    async def embed_input(self, inputs, dimensions: int | None = None, truncate: bool = False) -> Embeddings:
        """Texts or the model's own token ids, each checked against the window the model reads
        (a sentence-transformers model's max_seq_length): refused when longer, or cut with
        ``truncate``; fed as ids, so a text and its /tokenize ids give the same vector."""
        if dimensions is not None:
            raise no_dimensions(self.model_id)
        loaded = await self._load()
        if loaded.kind != "embedding":
            return await super().embed_input(inputs, dimensions, truncate)
        limit = (None if loaded.sentence_transformer else self.options.max_length) or loaded.context_length

        def run() -> tuple[list[list[float]], int]:
            ids = hf_tokens.checked_ids(loaded, self.model_id, inputs, limit, truncate)
            return hf_tokens.embed_ids(loaded, ids, self.options.normalize), sum(map(len, ids))

        vectors, tokens = await asyncio.to_thread(run)
        return Embeddings(vectors=vectors, model=self.model_id, usage=Usage(input_tokens=tokens))

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return hf_tokens.tokenize(self.loaded(), text, add_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return hf_tokens.detokenize(self.loaded(), tokens)

    def tokenizer_facts(self) -> TokenizerFacts:
        return hf_tokens.facts(self.loaded())

    def _embed_locked(self, loaded: Loaded, texts: list[str]) -> tuple[list[list[float]], int]:
        if not texts:
            return [], 0
        torch = require("torch", extra="finetune")
        # sentence-transformers truncates at its own max_seq_length: count what it reads.
        limit = (None if loaded.sentence_transformer else self.options.max_length) or loaded.context_length
        with loaded.lock, torch.inference_mode():
            encoded = loaded.tokenizer(
                texts, padding=True, truncation=bool(limit), max_length=limit, return_tensors="pt"
            )
            tokens = int(encoded["attention_mask"].sum())
            if loaded.sentence_transformer:
                vectors = loaded.model.encode(
                    texts,
                    normalize_embeddings=self.options.normalize,
                    show_progress_bar=False,
                    convert_to_tensor=True,
                )
            else:
                vectors = _mean_pool(loaded.model, encoded, self.options.normalize)
            return vectors.float().cpu().tolist(), tokens


def _mean_pool(model: Any, encoded: Any, normalize: bool) -> Any:
    """The attention-masked mean of the last hidden states, one vector per text."""
    torch = require("torch", extra="finetune")
    accepted = inspect.signature(model.forward).parameters
    hidden = model(**{k: v for k, v in encoded.items() if k in accepted}).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    vectors = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(vectors, dim=-1) if normalize else vectors


class Halt:
    """A stopping criterion: stop when ``halt`` is set or a stop string shows up in the output."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], start: int, halt: threading.Event):
        self.tokenizer, self.start, self.halt = tokenizer, start, halt
        self.stops = [s for s in stops if s]
        self.window = max((len(s) for s in self.stops), default=0) + 4  # tokens: at least a char each

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        torch = require("torch", extra="finetune")
        stop = self.halt.is_set()
        if not stop and self.stops:
            tail = input_ids[0, self.start :][-self.window :].tolist()
            text = self.tokenizer.decode(tail, skip_special_tokens=True)
            stop = first_stop(text, self.stops) is not None  # the scanners' one matching rule
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def _sampling(torch: Any, params: GenerationParams) -> dict:
    if params.temperature == 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    if params.seed is not None:
        torch.manual_seed(params.seed)
    return {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": None}


def _eos_ids(loaded: Loaded) -> set[int]:
    ids = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    found = set(ids) if isinstance(ids, list) else {ids}
    return {i for i in (*found, loaded.tokenizer.eos_token_id) if i is not None}


def _finish(out: Outcome, params: GenerationParams, stopped: bool) -> str:
    if not stopped and not out.hit_eos and out.output_tokens >= params.max_tokens:
        return "length"
    return "stop"


def _next_piece(streamer: Any) -> str | None:
    """The streamer's next text, or None at the end (StopIteration cannot cross a thread)."""
    while True:
        try:
            piece = next(streamer)
        except StopIteration:
            return None
        if piece:
            return piece
