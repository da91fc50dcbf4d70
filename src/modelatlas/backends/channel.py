"""Hand items from a worker thread to an async consumer without waking the loop for each one.

Waking the event loop for every token costs real speed on a small machine: the loop thread
preempts one of llama.cpp's compute threads and the whole decode step waits for it. So the
worker wakes the loop at once for urgent items (the first token, the end, an error) and
otherwise at most every ``interval`` seconds; items in between are delivered together.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque


class Channel:
    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = 0.03):
        self.interval = interval
        self._loop = loop
        self._items: deque = deque()
        self._wake = asyncio.Event()
        self._last: float | None = None

    def put(self, item, urgent: bool = False) -> None:
        """Called from the worker thread."""
        self._items.append(item)
        now = time.monotonic()
        if urgent or self._last is None or now - self._last >= self.interval:
            self._last = now
            # A RuntimeError means the loop is gone: nobody is listening any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def get(self) -> list:
        """Every item delivered so far, waiting until there is at least one."""
        while not self._items:
            await self._wake.wait()
            self._wake.clear()
        batch = []
        while self._items:
            batch.append(self._items.popleft())
        return batch
