"""Backends run models; the Model wrapper is what the rest of modelatlas calls.

Opening a model by id (``load_model``) lives in :mod:`modelatlas.loading`, above this package
and the catalog: resolving an id is the catalog's job, and this package never imports it.
"""

from modelatlas.backends.base import Backend, BackendOptions
from modelatlas.backends.declared import BackendFacts, facts, with_parallel
from modelatlas.backends.model import CallRecord, Model
from modelatlas.backends.pool import ModelPool, ModelSettings, open_model, shared_pool
from modelatlas.backends.registry import get_backend_class, names, register
from modelatlas.backends.retry import RetryPolicy

__all__ = [
    "Backend",
    "BackendFacts",
    "BackendOptions",
    "CallRecord",
    "Model",
    "ModelPool",
    "ModelSettings",
    "RetryPolicy",
    "facts",
    "get_backend_class",
    "names",
    "open_model",
    "register",
    "shared_pool",
    "with_parallel",
]
