"""Metering: one usage record per request, written off the request path.

A record is written "in_flight" when the request is admitted and completed ("done") when it
ends, so a server killed mid-request (kill -9) leaves a trace of every request it was
answering instead of nothing. Records queue in memory and a writer thread stores them in
batches (within a quarter of a second, and all of them when the server stops), so a request
never waits for the database; a request that starts and ends within one batch is written
once, finished. The rate limiter and /metrics see each finished record at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from modelatlas.catalog.records import ModelRecord
from modelatlas.processes import this_host
from modelatlas.serve import access_log
from modelatlas.serve.limits import Hold, RateLimiter
from modelatlas.store.keys import KeyInfo
from modelatlas.store.usage import Usage, record_usage

log = logging.getLogger(__name__)
_HOST = this_host()  # read once: a request should not ask the system each time
FLUSH_S = 0.25


class Meter:
    def __init__(self, limiter: RateLimiter, metrics=None, flush_s: float = FLUSH_S):
        self.limiter = limiter
        self.metrics = metrics
        self.flush_s = flush_s
        self._pending: dict[str, Usage] = {}  # request id -> its newest record
        self._stored: set[str] = set()  # request ids whose in-flight record is in the store
        self._open: dict[str, Ticket] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ticket(
        self,
        key: KeyInfo | None,
        record: ModelRecord,
        endpoint: str,
        streamed: bool,
        hold: Hold | None = None,
    ) -> Ticket:
        return Ticket(self, key, record, endpoint, streamed, hold)

    def open_tickets(self) -> list[Ticket]:
        """The requests admitted and not finished yet."""
        return list(self._open.values())

    def opened(self, ticket: Ticket) -> None:
        self._open[ticket.request_id] = ticket
        self._queue(ticket.usage(state="in_flight"))

    def record(self, usage: Usage, hold: Hold | None = None) -> None:
        """A finished request's record; its key's reservation (``hold``) settles to it."""
        tokens = usage.input_tokens + usage.output_tokens
        if hold is not None:
            self.limiter.settle(hold, tokens, usage.cost_usd)
        elif usage.key_id is not None:
            self.limiter.used(usage.key_id, tokens, usage.cost_usd)
        if self.metrics is not None:
            self.metrics.tokens(usage.model_id, usage.input_tokens, usage.output_tokens)
        if usage.request_id is not None:
            self._open.pop(usage.request_id, None)
        self._queue(usage)

    def flush(self) -> None:
        """Store every pending record now: new ones inserted, in-flight ones completed."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            fresh = [u for rid, u in batch.items() if rid not in self._stored]
            finished = [u for rid, u in batch.items() if rid in self._stored]
            try:
                record_usage(fresh, finished)
            except Exception:
                with self._lock:  # keep them for the next try (newer records win) rather than lose them
                    self._pending = {**batch, **self._pending}
                raise
            for usage in fresh:
                if usage.state == "in_flight":
                    self._stored.add(usage.request_id)
            for usage in finished:
                self._stored.discard(usage.request_id)

    def close(self) -> None:
        """Stop the writer and store everything; a request still open is stored interrupted."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for ticket in self.open_tickets():
            self._queue(ticket.usage(state="interrupted"))
        self.flush()

    def _queue(self, usage: Usage) -> None:
        with self._lock:
            self._pending[usage.request_id or uuid.uuid4().hex] = usage
        self._start()

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="modelatlas-meter", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception:
                log.exception("could not store usage records; will retry")


class Ticket:
    """The metering of one request: opened when it is admitted (an in-flight record), closed
    once with what it used; closing settles the key's reservation (``hold``)."""

    def __init__(
        self,
        meter: Meter,
        key: KeyInfo | None,
        record: ModelRecord,
        endpoint: str,
        streamed: bool,
        hold: Hold | None = None,
    ):
        self.meter, self.key, self.record, self.hold = meter, key, record, hold
        self.endpoint, self.streamed = endpoint, streamed
        self.request_id = uuid.uuid4().hex
        self.created_at = datetime.now(UTC)
        self.start = time.perf_counter()
        self.closed = False
        self.status, self.input_tokens, self.output_tokens, self.cancelled = 0, 0, 0, False
        self.error: BaseException | None = None
        self.note = access_log.current()
        if self.note is not None:
            self.note.tickets.append(self)
        meter.opened(self)

    def close(
        self,
        status: int,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float | None = None,
        cancelled: bool = False,
        audio_seconds: float = 0.0,
        images: int = 0,
    ) -> None:
        """Meter what the request used; ``audio_seconds``: the audio a transcription took in,
        priced per minute where the model's price says so; ``images``: the pictures an
        image-generation request made, priced per image."""
        if self.closed:
            return
        self.closed = True
        self.status, self.input_tokens, self.output_tokens = status, input_tokens, output_tokens
        self.cancelled = cancelled
        seconds = time.perf_counter() - self.start
        if cost_usd is None:
            price = self.record.price
            used = (input_tokens, output_tokens, seconds, audio_seconds, images)
            cost_usd = price.cost(*used) if price else 0.0
        done = replace(
            self.usage(state="done"),
            status=status,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd,
            latency_s=seconds,
            cancelled=cancelled,
            audio_seconds=audio_seconds,
            images=images,
        )
        self.meter.record(done, self.hold)
        if self.note is not None:
            self.note.ticket_closed()

    def fail(self, exc: BaseException) -> None:
        if not self.closed:
            self.error = exc
        self.close(getattr(exc, "http_status", 500))

    def usage(self, state: str) -> Usage:
        """The record of this request as it stands (nothing used yet)."""
        return Usage(
            model_id=self.record.id,
            endpoint=self.endpoint,
            status=self.status,
            key_id=self.key.id if self.key else None,
            key_name=self.key.name if self.key else None,
            streamed=self.streamed,
            created_at=self.created_at,
            request_id=self.request_id,
            state=state,
            server_pid=os.getpid(),
            server_host=_HOST,
        )
