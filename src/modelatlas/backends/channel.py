"""Hand messages from a worker thread to an async consumer without waking the loop for each one.

Waking the event loop for every token costs real speed on a small machine: the loop thread
preempts one of llama.cpp's compute threads and the whole decode step waits for it. So the
worker wakes the loop at once for urgent messages (the first text, the end, an error) and
otherwise at most every ``interval`` seconds; messages in between are delivered together.

What a generation on the llama.cpp worker thread says is one of three messages: some
``Text``, then its ``Done``; or a ``Failed`` instead, at any point.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar


@dataclass(frozen=True)
class Text:
    """A piece of generated text, ready for the caller (stop sequences already applied), and
    the log-probabilities of the tokens it was made of when they were asked for."""

    text: str
    logprobs: tuple = ()


@dataclass(frozen=True)
class Done:
    """The generation ended: why (stop, length, cancelled) and the tokens it read and made."""

    finish_reason: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Failed:
    """The generation failed; the consumer raises ``error``."""

    error: BaseException


WorkerMessage = Text | Done | Failed

T = TypeVar("T")


class Channel(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = 0.03):
        self.interval = interval
        self._loop = loop
        self._items: deque[T] = deque()
        self._wake = asyncio.Event()
        self._last: float | None = None

    def put(self, item: T, urgent: bool = False) -> None:
        """Called from the worker thread."""
        self._items.append(item)
        now = time.monotonic()
        if urgent or self._last is None or now - self._last >= self.interval:
            self._last = now
            # A RuntimeError means the loop is gone: nobody is listening any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def get(self) -> list[T]:
        """Every item delivered so far, waiting until there is at least one."""
        while not self._items:
            await self._wake.wait()
            self._wake.clear()
        batch = []
        while self._items:
            batch.append(self._items.popleft())
        return batch
