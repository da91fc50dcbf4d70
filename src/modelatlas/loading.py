"""Open a model by id (or record): resolve it, build its backend, wrap it in a Model.

This sits above both ``catalog`` and ``backends``: resolving an id is the catalog's job, running
a record is the backends' job, and neither package imports the other for it (it used to be
``backends/loader.py``, whose ``catalog.resolve`` import closed a ``backends <-> catalog``
package cycle, issue 12). ``modelatlas.get_model`` is this function under the facade's name.
"""

from __future__ import annotations

from modelatlas.backends.cache import StoreCache
from modelatlas.backends.model import Model
from modelatlas.backends.registry import get_backend_class
from modelatlas.backends.retry import RetryPolicy
from modelatlas.catalog.resolve import resolve
from modelatlas.config import settings
from modelatlas.errors import ConfigError
from modelatlas.records import ModelRecord

__all__ = ["load_model"]


def load_model(
    model: str | ModelRecord,
    *,
    max_concurrency: int | None = None,
    log_calls: bool = False,
    retry: RetryPolicy | None = None,
    cache: bool = False,
) -> Model:
    """A ready Model. ``log_calls`` writes one row per call to the store's call log;
    ``cache`` reuses answers from the store's response cache."""
    record = resolve(model) if isinstance(model, str) else model
    if not record.backend:
        raise ConfigError(
            f"modelatlas does not know how to run {record.id}: no backend serves it.",
            hint="Add it with a backend: `modelatlas models add ID --base-url URL` for an "
            "OpenAI-compatible API, or `--path FILE` for a model file.",
        )
    cls = get_backend_class(record.backend)
    backend = cls(record.id, record.location, cls.parse_options(record.options))
    conf = settings()
    on_call = None
    if log_calls:
        from modelatlas.store import log_call  # the store (SQLAlchemy) only when calls are logged

        on_call = log_call
    return Model(
        record,
        backend,
        max_concurrency=max_concurrency or conf.max_concurrency,
        retry=retry or RetryPolicy(max_attempts=conf.max_retries + 1),
        on_call=on_call,
        cache=StoreCache() if cache else None,
    )
