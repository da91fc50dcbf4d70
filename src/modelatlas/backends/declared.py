"""What a backend declares about the models it runs, so that nothing above ``backends/``
compares backend names or reads raw option keys.

Each backend class answers :meth:`Backend.facts` for one record; :func:`facts` finds the class
through the registry (a lazy ``"module:Class"`` import; the built-in backend modules import
llama_cpp, torch and openai only on first use, so asking costs no heavy import).

The module is named ``declared``, not ``facts``: the package re-exports the function
:func:`facts`, which would shadow a submodule of that name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelatlas.backends.base import Backend
    from modelatlas.records import ModelRecord

__all__ = ["BackendFacts", "facts", "generic_facts", "with_parallel"]


@dataclass(frozen=True)
class BackendFacts:
    """One record's facts, as its backend declares them."""

    hosted: bool = False  # runs elsewhere, behind an API: takes no memory here
    local: bool = False  # runs on this machine: priced as local compute
    required_env: tuple[str, ...] = ()  # environment variables a call needs (a provider key)
    concurrency_key: str = ""  # models with the same key share one limit ...
    max_connections: int | None = None  # ... of this many calls at once (None: the caller's)
    batches: bool = False  # decodes several requests together (continuous batching)
    parallel: int = 1  # how many it decodes together as configured
    trainable: bool = False  # a model file LoRA fine-tuning can start from
    adapter: bool = False  # itself a fine-tune (a LoRA adapter over a base)
    where: str | None = None  # where it runs, for `models list` (None: the record's location)


def generic_facts(record: ModelRecord) -> BackendFacts:
    """What is known of a model whose backend declares nothing more: a limit of its own."""
    return BackendFacts(concurrency_key=f"model:{record.id}")


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
