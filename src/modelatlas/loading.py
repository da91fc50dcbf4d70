"""Open a model by id (or record): resolve it, build its backend, wrap it in a Model.

This sits above both ``catalog`` and ``backends``: resolving an id is the catalog's job, running
a record is the backends' job, and neither package imports the other for it (it used to be
``backends/loader.py``, whose ``catalog.resolve`` import closed a ``backends <-> catalog``
package cycle, issue 12). ``modelatlas.get_model`` is this function under the facade's name.
"""

from __future__ import annotations

from modelatlas.backends.model import Model
from modelatlas.backends.pool import ModelSettings, open_model
from modelatlas.backends.retry import RetryPolicy
from modelatlas.catalog.resolve import resolve
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
    """A ready Model (not loaded yet; the first call or ``async with`` loads it), owned by the
    caller. ``log_calls`` writes one row per call to the store's call log; ``cache`` reuses
    answers from the store's response cache. Shared, refcounted models come from
    :func:`modelatlas.backends.shared_pool` instead."""
    record = resolve(model) if isinstance(model, str) else model
    wanted = ModelSettings(max_concurrency=max_concurrency, log_calls=log_calls, cache=cache, retry=retry)
    return open_model(record, wanted)
