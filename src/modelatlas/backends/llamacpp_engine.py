"""One loaded llama.cpp model, shared by every caller in the process.

llama.cpp contexts are not thread-safe, so every call that touches a context runs on one
long-lived worker thread, one after another: callers queue, and outputs never interleave. The
thread is shared by all engines in the process. Each llama.cpp call already uses every core
through its OpenMP thread team; measured on 2 cores, a new thread per call (a new team each
time) cost 40% of the speed, and two engines computing at once (two teams spinning against
each other) made an evaluation of two models slower than running them one after the other.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import functools
import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelatlas.backends import llama_adapter
from modelatlas.backends.channel import Done, Text
from modelatlas.backends.gguf_header import read_keys
from modelatlas.backends.stops import StopScanner
from modelatlas.errors import ContextLengthExceededError, InvalidRequestError, ModelFileError
from modelatlas.structured import TokenLogprob, TopToken

DEFAULT_MAX_CTX = 8192
_engines: dict[tuple, Engine] = {}
_engines_lock = threading.Lock()
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp")


@dataclass(frozen=True)
class Sampling:
    """How to pick each token. The fields after ``seed`` are honoured by the unbatched
    ``Engine.generate`` only (the batcher takes plain sampling): ``grammar`` is GBNF text the
    answer must follow, ``logit_bias`` (token id, bias) pairs added to the logits, ``logprobs``
    None or the number of alternatives to report with each token's log-probability."""

    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None
    grammar: str | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    logprobs: int | None = None

    @property
    def plain(self) -> bool:
        """Whether the batcher can decode it (nothing beyond temperature, top_p, stop, seed)."""
        return (
            self.grammar is None
            and not self.presence_penalty
            and not self.frequency_penalty
            and not self.logit_bias
            and self.logprobs is None
        )


@dataclass(frozen=True)
class TokenScore:
    """One token, its log-probability where it stands (None for the first one) and the ``top``
    most likely tokens there (token id to log-probability)."""

    token: int
    logprob: float | None
    top: dict[int, float] | None


def get_engine(path: str, n_ctx: int | None, n_threads: int | None, embedding: bool = False) -> Engine:
    """The shared engine for this file and settings, loaded on first use."""
    key = (str(Path(path).resolve()), n_ctx, n_threads, embedding)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = Engine(path, n_ctx, n_threads, embedding)
        return engine


def acquire_engine(path: str, n_ctx: int | None, n_threads: int | None, embedding: bool = False) -> Engine:
    """The shared engine, counting the caller as one of its users until :func:`release_engine`."""
    engine = get_engine(path, n_ctx, n_threads, embedding)
    with _engines_lock:
        engine.users += 1
    return engine


def release_engine(engine: Engine) -> Future:
    """Stop counting one user; when none is left, free the model (on the engine thread, after
    the calls queued before). A later :func:`get_engine` loads the file again."""
    with _engines_lock:
        engine.users -= 1
        if engine.users > 0:
            done: Future = Future()
            done.set_result(None)
            return done
        for key in [k for k, known in _engines.items() if known is engine]:
            del _engines[key]
    return engine.submit(engine.close)


@atexit.register
def _close_all() -> None:
    """Free the models still loaded when the interpreter exits, while llama_cpp can (its own
    finalizers fail once the interpreter has torn the module down). The engine thread has
    finished its jobs by then: Python joins executor threads before atexit handlers run."""
    with _engines_lock:
        engines = list(dict.fromkeys(_engines.values()))
        _engines.clear()
    for engine in engines:
        with contextlib.suppress(Exception):
            engine.close()


def check_gguf(path: str) -> None:
    """Fail clearly on a missing, unreadable or non-GGUF file before llama.cpp sees it."""
    file = Path(path)
    if not file.is_file():
        raise ModelFileError(f"No GGUF file at {path}.", hint="Check the path or reinstall the model.")
    try:
        with file.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelFileError(f"Cannot read {path}: {exc.strerror}.", hint="Check its permissions.") from exc
    if magic != b"GGUF":
        raise ModelFileError(
            f"{path} is not a GGUF file (it does not start with the GGUF magic bytes).",
            hint="Download the model again; a .gguf file from llama.cpp or the Hugging Face Hub is expected.",
        )


def trained_context(path: str) -> int | None:
    """The context length the model was trained with, read from the GGUF header (once per
    version of the file)."""
    stat = os.stat(path)
    return _trained_context(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _trained_context(path: str, size: int, mtime_ns: int) -> int | None:
    keys = read_keys(path, ["general.architecture", "*.context_length"])
    value = next((v for k, v in keys.items() if k.endswith(".context_length")), None)
    return int(value) if isinstance(value, int) else None


loads = 0  # model loads in this process (a warm re-run of an evaluation makes none)


class Engine:
    def __init__(self, path: str, n_ctx: int | None, n_threads: int | None, embedding: bool):
        self.path = path
        self._args = (n_ctx, n_threads, embedding)
        self._llm = None
        self._formatter = None
        self._batcher = None
        self._vocab = None  # a vocabulary-only load, to count tokens before the model is loaded
        self.users = 0

    def submit(self, fn: Callable, *args) -> Future:
        """Run ``fn(*args)`` on this engine's own thread, after the calls queued before it."""
        return _WORKER.submit(fn, *args)

    @property
    def llm(self):
        if self._llm is None:
            self._llm = self._load(*self._args)
        return self._llm

    def _load(self, n_ctx: int | None, n_threads: int | None, embedding: bool):
        llama_adapter.library()  # a missing or untested llama-cpp-python fails before the file is read
        check_gguf(self.path)
        self._n_ctx = n_ctx = self.requested_ctx()
        global loads
        loads += 1
        threads = n_threads or max(1, os.cpu_count() or 1)
        try:
            return llama_adapter.load(self.path, n_ctx, threads, embedding)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(
                f"llama.cpp could not load {self.path}: {exc}.",
                hint="The file may be truncated or corrupt, or its architecture too new for this "
                "llama-cpp-python; download it again or upgrade: pip install -U llama-cpp-python",
            ) from exc

    def close(self) -> None:
        """Free the model's memory (run it on the engine thread); using it again reloads it."""
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()
        llm, self._llm, self._formatter = self._llm, None, None
        vocab, self._vocab = self._vocab, None
        for held in (llm, vocab):
            if held is not None:
                held.close()

    def batcher(self, parallel: int):
        """The continuous batcher for ``parallel`` sequences (see llamacpp_batch), made on first
        use; run this on the engine thread."""
        from modelatlas.backends.llamacpp_batch import Batcher

        current = self._batcher
        if current is None or (current.requested != parallel and current.idle):
            if current is not None:
                current.close()
            self._batcher = Batcher(self, parallel)
        return self._batcher

    @property
    def n_ctx(self) -> int:
        """The usable context: llama.cpp may pad its own, but buffers follow the requested size.
        Before the model is loaded, the size it will be loaded with (from the GGUF header), so
        that asking does not load it: a run whose answers are all cached loads nothing."""
        if self._llm is None:
            return self.requested_ctx()
        return min(self._llm.n_ctx(), self._n_ctx)

    def requested_ctx(self) -> int:
        """The context to load with: the one asked for, else the trained one capped at 8192."""
        n_ctx = self._args[0]
        if n_ctx is not None:
            return n_ctx
        return min(trained_context(self.path) or DEFAULT_MAX_CTX, DEFAULT_MAX_CTX)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text``: with the loaded model, else with the file's vocabulary alone, so
        that counting (a prompt's fit, an estimate) never loads the weights."""
        return len(self._tokenizer().tokenize(utf8(text), add_bos=False, special=False))

    def _tokenizer(self):
        if self._llm is not None:
            return self._llm
        if self._vocab is None:
            llama_adapter.library()
            check_gguf(self.path)
            self._vocab = llama_adapter.load_vocab(self.path)
        return self._vocab

    # -- prompts -----------------------------------------------------------------------------

    def chat_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        """Render messages (and the ``tools`` the model may call, in OpenAI's shape) with the
        file's own chat template, then tokenize."""
        formatter = self._chat_formatter()
        try:
            rendered = formatter(messages=messages, tools=tools or None).prompt
        except Exception as exc:  # jinja raises many kinds
            from modelatlas.errors import InvalidRequestError

            raise InvalidRequestError(
                f"The chat template of {Path(self.path).name} rejected the messages: {exc}.",
                hint="Check the roles (some templates need alternating user/assistant turns).",
            ) from exc
        return self.llm.tokenize(utf8(rendered), add_bos=False, special=True)

    def text_tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(utf8(text), add_bos=True, special=False)

    def has_chat_template(self) -> bool:
        return "tokenizer.chat_template" in self.llm.metadata

    def _chat_formatter(self):
        if self._formatter is None:
            llm = self.llm
            template = llm.metadata.get("tokenizer.chat_template") or _PLAIN_TEMPLATE
            self._formatter = llama_adapter.chat_formatter(llm, template)
        return self._formatter

    def check_fits(self, model_id: str, n_prompt: int, max_tokens: int) -> None:
        if n_prompt + max_tokens > self.n_ctx:
            raise ContextLengthExceededError(model_id, n_prompt, max_tokens, self.n_ctx)

    # -- generation (run these on the engine's thread, through submit) -----------------------

    def generate(
        self,
        tokens: list[int],
        sampling: Sampling,
        cancel: threading.Event,
        scores: list[TokenScore] | None = None,
        top: int = 0,
    ) -> Iterator[Text | Done]:
        """Yield the text in ``Text`` pieces, cut at the first stop sequence, then ``Done``.

        With a ``scores`` list, each output token's log-probability and ``top`` alternatives
        are appended to it. With ``sampling.logprobs``, each ``Text`` carries the log-probability
        of the tokens it was made of (a token whose text a stop sequence cut is left out)."""
        llm = self.llm
        if sampling.seed is not None:
            llm.set_seed(sampling.seed)
        stops = StopScanner(sampling.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        wanted = sampling.logprobs
        pending: list[TokenLogprob] = []
        n_out, finish = 0, "length"
        for token in self._tokens_of(tokens, sampling):
            if cancel.is_set():
                finish = "cancelled"
                break
            if llama_adapter.ends_generation(llm, token):
                finish = "stop"
                break
            n_out += 1
            piece = self.piece(token)
            if scores is not None or wanted is not None:  # the token's logits are still the last ones
                score = _score(token, llama_adapter.row_logits(llm, -1), max(top, wanted or 0))
                if scores is not None:
                    scores.append(score)
                if wanted is not None:
                    pending.append(self._token_logprob(score, piece, wanted))
            if text := stops.feed(decoder.decode(piece)):
                yield Text(text, tuple(pending))
                pending = []
            if stops.stopped:
                finish = "stop"
                break
            if n_out >= sampling.max_tokens:
                break
        if rest := stops.feed(decoder.decode(b"", final=True)) + stops.flush():
            yield Text(rest, tuple(pending))
        yield Done(finish, len(tokens), n_out)

    def _tokens_of(self, tokens: list[int], sampling: Sampling) -> Iterator[int]:
        """The answer's tokens: plain sampling through ``Llama.generate``'s sampler; a grammar,
        logit_bias or penalties through grammar_decode's loop (as llama.cpp's server samples)."""
        if (
            sampling.grammar is not None
            or sampling.logit_bias
            or sampling.presence_penalty
            or sampling.frequency_penalty
        ):
            from modelatlas.backends.grammar_decode import sampled_tokens

            return sampled_tokens(self.llm, tokens, sampling)
        top_k = 40 if sampling.temperature > 0 else 1
        return self.llm.generate(tokens, temp=sampling.temperature, top_p=sampling.top_p, top_k=top_k)

    def _token_logprob(self, score: TokenScore, piece: bytes, top: int) -> TokenLogprob:
        """OpenAI's chat log-probability entry of one answer token."""
        alternatives = [
            TopToken(token=_text(p := self.piece(t)), logprob=lp, bytes=list(p))
            for t, lp in list((score.top or {}).items())[:top]
        ]
        return TokenLogprob(
            token=_text(piece), logprob=score.logprob or 0.0, bytes=list(piece), top=alternatives
        )

    def check_token_ids(self, ids: list[int], param: str) -> None:
        """Refuse token ids outside the vocabulary, naming the request field they came in."""
        n_vocab = self.llm.n_vocab()
        bad = [t for t in ids if not 0 <= t < n_vocab]
        if bad:
            raise InvalidRequestError(
                f"'{param}' names token {bad[0]}, outside the vocabulary of {Path(self.path).name} "
                f"(0 to {n_vocab - 1}).",
                hint="Use token ids from this model's tokenizer (POST /tokenize).",
                param=param,
            )

    def loglikelihood(self, context: str, continuation: str) -> tuple[float, bool, int]:
        """Sum of log-probabilities of the continuation tokens, and whether each was the argmax."""
        ctx = self.text_tokens(context)
        full = self.text_tokens(context + continuation)
        cont = full[len(ctx) :] if full[: len(ctx)] == ctx else self._plain(continuation)
        if not cont:
            return 0.0, True, 0
        tokens = ctx + cont
        if len(tokens) > self.n_ctx:
            raise ContextLengthExceededError(Path(self.path).name, len(tokens), 0, self.n_ctx)
        logprob, greedy = 0.0, True
        for pos, logits in self._logits_at(tokens, first=len(ctx) - 1):
            target = tokens[pos + 1]
            logprob += float(logits[target]) - _log_normalizer(logits)
            greedy = greedy and int(logits.argmax()) == target
        return logprob, greedy, len(cont)

    def score(self, tokens: list[int], hidden: int, top: int) -> list[TokenScore]:
        """Each token of ``tokens[hidden:]`` with its log-probability given the tokens before it
        (decoded from scratch); the first of them gets None, as in OpenAI's echoed prompts."""
        if len(tokens) > self.n_ctx:
            raise ContextLengthExceededError(Path(self.path).name, len(tokens), 0, self.n_ctx)
        if len(tokens) <= hidden:
            return []
        scores = [TokenScore(tokens[hidden], None, None)]
        for pos, logits in self._logits_at(tokens, first=hidden):
            scores.append(_score(tokens[pos + 1], logits, top))
        return scores

    def piece(self, token: int) -> bytes:
        """The bytes of one token (none for control tokens such as BOS). llama-cpp-python's own
        detokenize loses the pieces longer than its 32-byte buffer (long runs of spaces)."""
        return llama_adapter.token_piece(self.llm, token)

    def adds_bos(self) -> bool:
        """Whether the tokenizer starts a text with BOS (and so the prompts here do)."""
        bos = self.llm.token_bos()
        return bos != -1 and self.text_tokens("")[:1] == [bos]

    def _plain(self, text: str) -> list[int]:
        return self.llm.tokenize(utf8(text), add_bos=False, special=False)

    def _logits_at(self, tokens: list[int], first: int):
        """Decode ``tokens`` from scratch; yield (position, logits) for positions first..len-2."""
        llm = self.llm
        llama_adapter.forget(llm)
        try:
            for start in range(0, len(tokens), llm.n_batch):
                chunk = tokens[start : start + llm.n_batch]
                wanted = [j for j in range(len(chunk)) if first <= start + j <= len(tokens) - 2]
                llama_adapter.decode(llm, chunk, start, wanted)
                for j in wanted:
                    yield start + j, llama_adapter.row_logits(llm, j).copy()
        finally:
            llama_adapter.forget(llm)

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        llm = self.llm
        counts = [self.count_tokens(t) for t in texts]  # refuses text that is not valid Unicode
        if 0 in counts:  # llama.cpp fails to decode nothing and leaves its context corrupt
            raise InvalidRequestError(
                f"Text {counts.index(0)} to embed is empty: it has no tokens.",
                hint="Leave out empty texts, or embed some text in their place.",
            )
        vectors = [_pooled(llm.embed(text, normalize=False)) for text in texts]
        return vectors, sum(counts)


# Used for GGUF files without a chat template (base models): plain "role: content" turns.
_PLAIN_TEMPLATE = (
    "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n\n"
    "{% elif m.role == 'user' %}User: {{ m.content }}\n{% else %}Assistant: {{ m.content }}\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _log_normalizer(logits) -> float:
    """log(sum(exp(logits))), computed stably."""
    top = float(logits.max())
    return top + math.log(float(np.exp(logits - top).sum()))


def _score(token: int, logits, top: int) -> TokenScore:
    """The token's log-probability under ``logits`` and the ``top`` most likely tokens."""
    norm = _log_normalizer(logits)
    best = None
    if top > 0:
        ids = np.argpartition(logits, -top)[-top:]
        ids = ids[np.argsort(-logits[ids])]
        best = {int(i): float(logits[i]) - norm for i in ids}
    return TokenScore(token, float(logits[token]) - norm, best)


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")


def _pooled(raw) -> list[float]:
    """One normalised vector: models without a pooling layer give one vector per token; average them."""
    array = np.asarray(raw, dtype=np.float64)
    if array.ndim == 2:
        array = array.mean(axis=0)
    norm = float(np.linalg.norm(array))
    return (array / norm if norm > 0 else array).tolist()


def utf8(text: str, param: str | None = None) -> bytes:
    """The text as UTF-8; one with a lone surrogate (valid in JSON, not in Unicode) is refused
    (a 400 naming ``param``, where given)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            f"The text is not valid Unicode: it holds a lone UTF-16 surrogate at character {exc.start}.",
            hint="Send UTF-8 text; a character outside the BMP is a surrogate pair, never half of one.",
            param=param,
        ) from exc
