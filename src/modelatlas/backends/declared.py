"""What a backend declares about the models it runs, so that nothing above ``backends/``
compares backend names, reads raw option keys or guesses what a model can do.

Each backend class answers :meth:`Backend.facts` for one record; :func:`facts` finds the class
through the registry (a lazy ``"module:Class"`` import; the built-in backend modules import
llama_cpp, torch and openai only on first use, so asking costs no heavy import).

The module is named ``declared``, not ``facts``: the package re-exports the function
:func:`facts`, which would shadow a submodule of that name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from modelatlas.backends.base import Backend
    from modelatlas.records import ModelRecord

__all__ = [
    "CAPABILITIES",
    "PART_KINDS",
    "BackendFacts",
    "Capability",
    "batch_invariant",
    "facts",
    "generic_facts",
    "model_key",
    "weights_bytes",
    "with_parallel",
]

# What a model can be asked to do; each name is a call on the Model wrapper (or a request field
# serve honours). A backend declares the ones it implements; a record may narrow them (an
# embedding model makes vectors, not text).
Capability = Literal[
    "generate",  # generate(): a whole answer
    "stream",  # stream(): the answer piece by piece, as it is decoded
    "embeddings",  # embed(): vectors
    "loglikelihood",  # loglikelihood(): the log-probability of a continuation
    "token_logprobs",  # token_logprobs(): each token's log-probability, echo of the prompt
    "tools",  # tool calls in the answer
    "structured_output",  # an answer held to a JSON schema
    "transcription",  # transcribe(): speech to text
    "image_generation",  # generate_image(): text to image
]
CAPABILITIES: tuple[Capability, ...] = Capability.__args__  # type: ignore[attr-defined]
# The kinds of message part a model may take (types.Message content parts).
PART_KINDS = ("text", "image", "audio")
TEXT_ONLY = frozenset({"text"})


@dataclass(frozen=True)
class BackendFacts:
    """One record's facts, as its backend declares them."""

    hosted: bool = False  # runs elsewhere, behind an API: takes no memory here
    local: bool = False  # runs on this machine: priced as local compute
    required_env: tuple[str, ...] = ()  # environment variables a call needs (a provider key)
    config_env: tuple[str, ...] = ()  # ... and those that are not secrets (an Azure endpoint)
    concurrency_key: str = ""  # models with the same key share one limit ...
    max_connections: int | None = None  # ... of this many calls at once (None: the caller's)
    batches: bool = False  # decodes several requests together (continuous batching)
    parallel: int = 1  # how many it decodes together as configured
    trainable: bool = False  # a model file LoRA fine-tuning can start from
    adapter: bool = False  # itself a fine-tune (a LoRA adapter over a base)
    where: str | None = None  # where it runs, for `models list` (None: the record's location)
    capabilities: frozenset[str] = frozenset({"generate", "stream"})  # names in CAPABILITIES
    accepts: frozenset[str] = TEXT_ONLY  # the message part kinds it takes (PART_KINDS)
    outputs: frozenset[str] = TEXT_ONLY  # what it makes: "text", "embedding", "image", "audio"
    # Memory it takes here once loaded, in bytes, when known: the record's estimate, else the
    # size of its weights on disk (a GGUF file is memory-mapped whole); 0 when hosted.
    memory_bytes: int | None = None
    file_format: str | None = None  # the weights' format where it runs a file: "gguf", "huggingface"

    def can(self, capability: Capability) -> bool:
        """Whether the model can be asked for ``capability`` (a name in CAPABILITIES)."""
        return capability in self.capabilities

    def missing_env(self) -> list[str]:
        """The variables among ``required_env`` and ``config_env`` that are unset here."""
        return [name for name in (*self.required_env, *self.config_env) if not os.environ.get(name)]


def weights_bytes(record: ModelRecord) -> int | None:
    """The memory need known from ``record``: its estimate, else its weights' size on disk."""
    if record.memory_gb is not None:
        return int(record.memory_gb * 2**30)
    path = Path(record.location).expanduser() if record.location else None
    try:
        if path is not None and path.is_file():
            return path.stat().st_size
        if path is not None and path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    except OSError:  # gone or unreadable: not known
        return None
    return None


def model_key(record: ModelRecord) -> str:
    """The concurrency key of a model that shares its limit with no other."""
    return f"model:{record.id}"


def generic_facts(record: ModelRecord) -> BackendFacts:
    """What is known of a model whose backend declares nothing more: a limit of its own."""
    return BackendFacts(concurrency_key=model_key(record))


def _backend_class(record: ModelRecord) -> type[Backend] | None:
    from modelatlas.backends.registry import get_backend_class
    from modelatlas.errors import ModelAtlasError

    if not record.backend:
        return None
    try:
        return get_backend_class(record.backend)
    except ModelAtlasError:  # unknown, or its package is missing: nothing declared
        return None


def facts(record: ModelRecord) -> BackendFacts:
    """The facts ``record``'s backend declares for it (generic ones when it cannot be found)."""
    cls = _backend_class(record)
    return cls.facts(record) if cls is not None else generic_facts(record)


def with_parallel(record: ModelRecord, n: int) -> ModelRecord:
    """The record set to decode ``n`` requests together, where its backend batches; else as is."""
    cls = _backend_class(record)
    return cls.with_parallel(record, n) if cls is not None else record


def batch_invariant(record: ModelRecord) -> bool:
    """Whether ``record``'s backend decodes a request beside others exactly as alone."""
    cls = _backend_class(record)
    return cls is not None and cls.batch_invariant()
