"""The one module that reaches below llama-cpp-python's public ``Llama`` class.

The engine and the batcher need what that class does not offer: a token's exact bytes (its own
detokenize drops pieces longer than 32 bytes), the logits of chosen rows of a decode, the
end-of-generation test, and a second context for several sequences at once. Those live in
``llama_cpp``'s ctypes bindings and in the ``Llama`` object's private ``_ctx``, ``_model`` and
``_batch``, which change between releases without notice; so every such access is here, and
the installed version is checked against the range these functions were tested with before
any model loads. The rest of modelatlas uses only ``Llama``'s public methods and this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import threading
from typing import Any

import numpy as np

from modelatlas.backends.base import require
from modelatlas.errors import BackendError, DependencyVersionError

PACKAGE = "llama-cpp-python"
# The versions this module was tested with: pyproject's lower bound up to 0.3.36, the release
# installed when it was written; a 0.4 may rename the private parts used here.
TESTED_FROM = (0, 3, 16)
TESTED_BELOW = (0, 4)
TESTED_RANGE = ">=0.3.16,<0.4"

_checked: Any = None


def check_version(version: str) -> None:
    """Fail unless ``version`` of llama-cpp-python is in the tested range."""
    found = re.match(r"\d+(?:\.\d+)*", version.strip())
    parts = tuple(int(p) for p in found.group().split(".")) if found else None
    if parts is None or not TESTED_FROM <= parts < TESTED_BELOW:
        raise DependencyVersionError(PACKAGE, version, TESTED_RANGE)


def library() -> Any:
    """The ``llama_cpp`` module, imported on first use and checked against the tested range.

    Before the first model loads, ggml's tiled matrix product is switched off (unless the
    environment sets ``GGML_CPU_TILED_MM`` already): it takes over from the row-by-row product
    only for some batch shapes, so a token's logits would depend on how many others shared
    its batch (see :func:`batch_invariant`). For the same reason every CPU backend made from
    then on computes attention with ggml's reference kernel (:func:`_reference_attention`)."""
    global _checked
    if _checked is None:
        os.environ.setdefault("GGML_CPU_TILED_MM", "0")
        module = require("llama_cpp", extra="local", package=PACKAGE)
        check_version(getattr(module, "__version__", "unknown"))
        _reference_attention(module)
        _checked = module
    return _checked


# Set when every CPU backend made from now on uses ggml's reference flash attention.
_reference_kernels = False
_kept_alive: list[Any] = []
_BACKEND_INIT_SLOT = 5  # ggml_backend_device_i: get_name, get_description, get_memory,
#                          get_type, get_props, init_backend, ...


def _reference_attention(llama_cpp: Any) -> None:
    """Make ggml's CPU device set ``use_ref`` on each backend it makes.

    Flash attention on the CPU has three kernels: one that handles each query row on its own
    (the reference), a tiled one for 64 query rows or more per sequence, and one that splits
    the keys between threads for a lone query over 512 cached cells or more. The last two add
    up in another order, so a token's result would depend on how its prompt was cut into
    batches and on whether other sequences decode beside it. ggml has the switch
    (``ggml_backend_cpu_set_use_ref``) but llama.cpp keeps its backends private, so the CPU
    device's backend constructor is wrapped: ggml's device table is plain memory, read here
    only after its name and type slots answer as the CPU device's must. Where they do not,
    nothing changes and models load without flash attention (slower, equally exact)."""
    global _reference_kernels
    try:
        libdir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
        ggml = ctypes.CDLL(os.path.join(libdir, "libggml.so"))
        cpu = ctypes.CDLL(os.path.join(libdir, "libggml-cpu.so"))
        by_type, is_cpu, set_use_ref = (
            ggml.ggml_backend_dev_by_type,
            cpu.ggml_backend_is_cpu,
            cpu.ggml_backend_cpu_set_use_ref,
        )
    except (OSError, AttributeError):
        return
    by_type.restype, by_type.argtypes = ctypes.c_void_p, [ctypes.c_int]
    is_cpu.restype, is_cpu.argtypes = ctypes.c_bool, [ctypes.c_void_p]
    set_use_ref.restype, set_use_ref.argtypes = None, [ctypes.c_void_p, ctypes.c_bool]
    device = by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    if not device:
        return
    table = ctypes.cast(device, ctypes.POINTER(ctypes.c_void_p))
    name = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_void_p)(table[0])
    kind = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(table[3])
    if name(device) != b"CPU" or kind(device) != 0:
        return
    make = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)
    original = make(table[_BACKEND_INIT_SLOT])

    def init_backend(dev: int, params: bytes | None) -> int | None:
        backend = original(dev, params)
        if backend and is_cpu(backend):
            set_use_ref(backend, True)
        return backend

    wrapped = make(init_backend)
    _kept_alive.extend([ggml, cpu, original, wrapped])
    table[_BACKEND_INIT_SLOT] = ctypes.cast(wrapped, ctypes.c_void_p).value
    _reference_kernels = True


# -- loading -----------------------------------------------------------------------------------


def load(path: str, n_ctx: int, n_threads: int, embedding: bool) -> Any:
    """A ``Llama`` for the file, its load logs kept off the terminal. Raises what llama.cpp
    raises for a file it cannot load (ValueError, RuntimeError, OSError).

    The weights stay as the file has them (``use_extra_bufts`` off): ggml's CPU backend would
    otherwise repack Q4_0, Q4_K and Q8_0 weights for a product that handles rows four at a
    time and the rest one by one, so a token's result would depend on its batch's size."""
    llama_cpp = library()
    with quiet_stderr(), _plain_weights(llama_cpp):
        return llama_cpp.Llama(
            model_path=path,
            n_ctx=n_ctx,
            n_batch=min(512, n_ctx),
            n_threads=n_threads,
            embedding=embedding,
            flash_attn=not embedding and _reference_kernels,
            verbose=False,
        )


_defaults_lock = threading.Lock()


@contextlib.contextmanager
def _plain_weights(llama_cpp: Any):
    """Within the block, model loads take llama.cpp's default parameters with the extra
    (repacking) buffer types off: ``Llama`` offers no argument for it."""
    bindings = llama_cpp.llama_cpp
    original = bindings.llama_model_default_params

    def plain():
        params = original()
        params.use_extra_bufts = False
        return params

    with _defaults_lock:
        bindings.llama_model_default_params = plain
        try:
            yield
        finally:
            bindings.llama_model_default_params = original


def batch_invariant() -> bool:
    """Whether a sequence's greedy tokens are the same whatever else shares its batch.

    ggml's CPU backend computes each output of a matrix product as one dot product, in the
    same order whatever the batch, except in three faster paths that take over for some
    shapes: llamafile's sgemm (for batches of 2 tokens or more; compiled in unless llama.cpp
    is built with ``-DGGML_LLAMAFILE=OFF``, as the Makefile builds it), the tiled product and
    repacked weights (both switched off here at run time). Attention is flash attention with
    ggml's reference kernel, one query row at a time over every cached cell in order (see
    :func:`_reference_attention`), or, where that kernel cannot be chosen, llama.cpp's plain
    attention, made of the same products and row-wise softmax. Each slot's own KV cache stream
    keeps the order of its cells."""
    info = library().llama_print_system_info().decode(errors="replace")
    return "LLAMAFILE = 1" not in info and os.environ.get("GGML_CPU_TILED_MM") == "0"


def load_vocab(path: str) -> Any:
    """llama.cpp's model object holding only the file's vocabulary (no weights, no context):
    ``tokenize(text, add_bos, special)`` works, decoding does not."""
    llama_cpp = library()
    internals = require("llama_cpp._internals", extra="local", package=PACKAGE)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    with quiet_stderr():
        return internals.LlamaModel(path_model=path, params=params, verbose=False)


def chat_formatter(llm: Any, template: str) -> Any:
    """llama-cpp-python's Jinja2 chat formatter for ``template``, with the model's own BOS and
    EOS text (the template may write them)."""
    chat_format = require("llama_cpp.llama_chat_format", extra="local", package=PACKAGE)
    eos, bos = llm.token_eos(), llm.token_bos()
    return chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
    )


@functools.cache
def flat_mtmd_handler() -> type:
    """llama-cpp-python's multimodal chat handler (MTMDChatHandler, images through a projector
    file) with each message's parts rendered as one string: its text, with the media marker where
    each image was. Any chat template takes a string, while many text templates (SmolLM2's,
    Llama's) fail on a list of parts. It overrides the handler's private
    ``_convert_message_for_template``, which is why it lives here."""
    library()  # the installed version is one these hooks were tested with
    chat_format = require("llama_cpp.llama_chat_format", extra="local", package=PACKAGE)

    class FlatMTMDChatHandler(chat_format.MTMDChatHandler):
        @classmethod
        def _convert_message_for_template(cls, message: Any, media_marker: str) -> dict[str, Any]:
            content = message.get("content")
            if not isinstance(content, list):
                return dict(message)
            pieces = [media_marker if p.get("type") == "image_url" else p.get("text", "") for p in content]
            return {**message, "content": "".join(pieces)}

    return FlatMTMDChatHandler


def json_schema_to_gbnf(schema_json: str, prop_order: list[str] | None = None) -> str:
    """llama.cpp's own JSON-schema-to-grammar converter (the Python port llama-cpp-python ships
    in ``llama_cpp.llama_grammar``, below its public ``Llama`` class)."""
    library()
    grammar_module = require("llama_cpp.llama_grammar", extra="local", package=PACKAGE)
    return grammar_module.json_schema_to_gbnf(schema_json, prop_order=prop_order)


@functools.lru_cache(maxsize=64)
def grammar(gbnf: str) -> Any:
    """llama-cpp-python's grammar object for GBNF text (llama.cpp parses it when sampling)."""
    return library().LlamaGrammar.from_string(gbnf, verbose=False)


class GrammarSampler:
    """llama.cpp's grammar sampler on its own, outside a sampler chain, so that a token can be
    checked alone (one candidate) before the whole vocabulary is masked: llama.cpp's own
    server samples first and applies the grammar to every token only when the choice breaks
    it, since masking a 151k-token vocabulary at every step costs more than the decode."""

    def __init__(self, llm: Any, gbnf: str):
        self._lib = library()
        self._ptr = self._lib.llama_sampler_init_grammar(llm._model.vocab, gbnf.encode(), b"root")
        if not self._ptr:
            raise BackendError("llama.cpp could not parse the grammar built for this request.")
        self._one = (self._lib.llama_token_data * 1)()
        self._dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)

    def allows(self, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0
        self._apply(self._one, 1)
        return bool(np.isfinite(self._one[0].logit))

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """``logits`` with every token the grammar forbids here set to -inf."""
        data = np.zeros(logits.size, dtype=self._dtype)
        data["id"] = np.arange(logits.size, dtype=np.intc)
        data["logit"] = logits
        array = (self._lib.llama_token_data * logits.size).from_buffer(data)
        self._apply(array, logits.size)
        return data["logit"].astype(np.float32)

    def accept(self, token: int) -> None:
        self._lib.llama_sampler_accept(self._ptr, token)

    def close(self) -> None:
        if self._ptr:
            self._lib.llama_sampler_free(self._ptr)
            self._ptr = None

    def _apply(self, data: Any, size: int) -> None:
        cur = self._lib.llama_token_data_array(data=data, size=size, selected=-1, sorted=False)
        self._lib.llama_sampler_apply(self._ptr, ctypes.byref(cur))


def keep_prefix(llm: Any, tokens: list[int]) -> int:
    """Keep the KV cache of the longest prefix ``tokens`` shares with what the model holds (at
    least one token is left to evaluate, for fresh logits); the number of tokens kept."""
    held = llm._input_ids[: llm.n_tokens].tolist()
    n = 0
    for a, b in zip(held, tokens[:-1], strict=False):
        if a != b:
            break
        n += 1
    llm.n_tokens = n
    return n


# -- tokens ------------------------------------------------------------------------------------


def ends_generation(llm: Any, token: int) -> bool:
    """Whether ``token`` ends a generation (EOS, end of turn and the like)."""
    return bool(library().llama_vocab_is_eog(llm._model.vocab, token))


def token_piece(llm: Any, token: int) -> bytes:
    """The bytes of one token (none for control tokens such as BOS)."""
    llama_cpp = library()
    vocab, size = llm._model.vocab, 64
    while True:
        buffer = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, False)
        if n >= 0:
            return buffer.raw[:n]
        if -n <= size:  # never grows: give up rather than loop forever on the engine thread
            raise BackendError(f"llama.cpp could not render token {token} as text.")
        size = -n  # too small: llama.cpp says how much it needs


# -- logits ------------------------------------------------------------------------------------


def row_logits(llm: Any, row: int) -> np.ndarray:
    """The logits of a row of the last decode (-1: its last row): a view, valid until the
    next decode."""
    return np.ctypeslib.as_array(llm._ctx.get_logits_ith(row), shape=(llm.n_vocab(),))


def forget(llm: Any) -> None:
    """Empty the model's KV cache and its record of the tokens it holds."""
    llm.reset()
    llm._ctx.kv_cache_clear()


def decode(llm: Any, tokens: list[int], n_past: int, rows: list[int]) -> None:
    """Decode ``tokens`` (at most ``llm.n_batch``) after ``n_past`` cached ones, keeping the
    logits of each of ``rows`` (indexes into ``tokens``) and of the last token."""
    llm._batch.set_batch(tokens, n_past=n_past, logits_all=False)
    for row in rows:
        llm._batch.batch.logits[row] = True
    llm._ctx.decode(llm._batch)


# -- several sequences at once (the batcher) -----------------------------------------------------


def batch_size(llm: Any) -> int:
    """The most tokens one decode of this model's context takes."""
    return int(llm.context_params.n_batch)


class BatchContext:
    """A second llama.cpp context on ``llm``'s loaded weights for ``n_seq`` sequences, each
    with its own KV cache stream of ``per_seq`` cells, and the token batch fed to it. Use and
    close it on the engine's thread."""

    def __init__(self, llm: Any, n_seq: int, per_seq: int):
        llama_cpp = library()
        internals = require("llama_cpp._internals", extra="local", package=PACKAGE)
        self._lib = llama_cpp
        self.n_vocab = llm.n_vocab()
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        self.n_batch = int(params.n_batch)
        params.n_seq_max = n_seq
        params.kv_unified = False
        params.n_ctx = per_seq * n_seq
        with quiet_stderr():
            self._ctx = internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(self._ctx.ctx))
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)

    @property
    def n_tokens(self) -> int:
        return int(self._batch.n_tokens)

    @n_tokens.setter
    def n_tokens(self, n: int) -> None:
        self._batch.n_tokens = n

    def put(self, row: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
        """Put one token of sequence ``seq_id`` at position ``pos`` in row ``row`` of the batch."""
        batch = self._batch
        batch.token[row] = token
        batch.pos[row] = pos
        batch.n_seq_id[row] = 1
        batch.seq_id[row][0] = seq_id
        batch.logits[row] = logits

    def decode(self) -> int:
        """Decode the batch; llama.cpp's return code (0 when it worked)."""
        return int(self._lib.llama_decode(self._ctx.ctx, self._batch))

    def logits(self, row: int) -> np.ndarray:
        """The logits of a batch row: a view, valid until the next decode."""
        raw = self._lib.llama_get_logits_ith(self._ctx.ctx, row)
        return np.ctypeslib.as_array(raw, shape=(self.n_vocab,))

    def drop(self, seq_id: int) -> None:
        """Free the KV cells of one sequence."""
        self._lib.llama_memory_seq_rm(self._ctx.memory, seq_id, -1, -1)

    def trim(self, seq_id: int, keep: int) -> bool:
        """Free the KV cells of sequence ``seq_id`` from position ``keep`` on, keeping the
        prefix before it; False where the memory cannot cut a sequence part-way."""
        return bool(self._lib.llama_memory_seq_rm(self._ctx.memory, seq_id, keep, -1))

    def copy(self, src: int, dst: int) -> None:
        """Make sequence ``dst``'s KV cache a copy of sequence ``src``'s (its own stream's
        cells, copied before the next decode); trim it after to keep a prefix."""
        self._lib.llama_memory_seq_rm(self._ctx.memory, dst, -1, -1)
        self._lib.llama_memory_seq_cp(self._ctx.memory, src, dst, -1, -1)

    def clear(self) -> None:
        """Free every sequence's KV cells."""
        if self._ctx.memory is not None:
            self._lib.llama_memory_clear(self._ctx.memory, True)

    def close(self) -> None:
        self._lib.llama_batch_free(self._batch)
        self._ctx.close()


@contextlib.contextmanager
def quiet_stderr():
    """llama.cpp prints load logs straight to fd 2; keep them off the user's terminal."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
