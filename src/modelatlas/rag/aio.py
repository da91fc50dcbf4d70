"""Run a coroutine from synchronous code, even when the caller is inside an event loop.

The bridge of RAG's sync Python API only (``rag.index`` and ``KnowledgeBase.search``, for
scripts and notebooks): library code awaits ``aindex`` / ``asearch`` (the evaluation's RAG
strategy does), and the CLI runs those in its own ``asyncio.run``. Called inside a running loop
this starts a second loop in a thread, which is why no async code path may use it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` here, or in a worker thread when this thread's loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelatlas-rag") as pool:
        return pool.submit(asyncio.run, coro).result()
