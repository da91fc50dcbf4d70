"""How long a request's generation may run: until it ends, its client leaves, or the server's
grace period for stopping is over, whichever comes first.

A client that gives up (``curl -m 3``) used to leave its generation running: it held a queue
slot 16.8 s and was billed 1,500 tokens nobody read. A server told to stop (SIGTERM) stops
accepting at once, lets running requests finish for ``--shutdown-timeout`` seconds, then ends
the rest with an error (an error event and ``[DONE]`` for a stream), metered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from fastapi.responses import Response

from modelatlas.serve.errors import ShuttingDownError

T = TypeVar("T")
DEFAULT_SHUTDOWN_TIMEOUT_S = 30.0


class ClientLeft(Exception):
    """The client closed its connection before the answer was ready."""


class Shutdown:
    """The server's stop: ``begin`` starts the grace period, ``limit`` bounds work by it."""

    def __init__(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S):
        self.timeout_s = timeout_s
        self.deadline: float | None = None  # the event loop's clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: set[asyncio.Timeout] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def begin(self) -> None:
        """Start the grace period (safe to call from a signal handler or another thread)."""
        if self._loop is not None and self.deadline is None:
            self._loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        if self.deadline is None and self._loop is not None:
            self.deadline = self._loop.time() + self.timeout_s
            for timeout in list(self._timeouts):
                timeout.reschedule(self.deadline)

    @contextlib.asynccontextmanager
    async def limit(self) -> AsyncIterator[None]:
        """Raise ShuttingDownError in the block once the grace period is over.

        Each block is an ``asyncio.timeout`` that ``begin`` moves to the deadline, so waiting
        for a token costs no extra task. Keep the block around awaits of this task only (not
        around a generator's ``yield``)."""
        timeout = asyncio.timeout_at(self.deadline)
        self._timeouts.add(timeout)
        try:
            async with timeout:
                yield
        except TimeoutError:
            if not timeout.expired():
                raise  # someone else's timeout
            raise ShuttingDownError(
                f"The server is shutting down and its grace period of {self.timeout_s:g} seconds "
                "for running requests is over.",
                hint="Send the request again once the server is back.",
            ) from None
        finally:
            self._timeouts.discard(timeout)


async def watched(work: Awaitable[T], receive, shutdown: Shutdown) -> T:
    """The result of ``work``, run as a task that is cancelled (so it frees its slot) when the
    client disconnects (ClientLeft) or the shutdown grace period ends (ShuttingDownError)."""

    async def bounded() -> T:
        async with shutdown.limit():
            return await work

    task = asyncio.ensure_future(bounded())
    gone = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))  # its slot and its generation are released first
    if task.cancelled():
        raise ClientLeft
    return task.result()


async def metered_whole(request, ticket, start: Callable[[], Awaitable[T]]) -> T | Response:
    """The result of ``start()``, run under ``watched``, for a route that answers whole (images,
    transcriptions), with its failures metered on ``ticket``: a client that leaves first is
    closed as cancelled and gets the returned 499 response, as on the chat routes; a shutdown is
    closed as cancelled with its status; every failure is recorded and raised. ``start`` is
    called inside, so a check it makes first (can the model do this?) is metered too."""
    state = request.app.state
    try:
        return await watched(start(), request.receive, state.shutdown)
    except ClientLeft:
        ticket.close(499, cancelled=True)
        return Response(status_code=499)
    except BaseException as exc:
        if isinstance(exc, ShuttingDownError):
            ticket.close(exc.http_status, cancelled=True)
        ticket.fail(exc)
        raise


async def _disconnect(receive) -> None:
    """Returns when the server reports the client gone (the body was read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass
