"""Metering: one usage record per request, written off the request path.

Records queue in memory and a writer thread stores them in batches (within a quarter of a
second, and all of them when the server stops), so a request never waits for the database.
The rate limiter and /metrics see each record at once."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from modelatlas.catalog.records import ModelRecord
from modelatlas.serve.limits import RateLimiter
from modelatlas.store.keys import KeyInfo
from modelatlas.store.usage import Usage, record_usage

log = logging.getLogger(__name__)
FLUSH_S = 0.25


class Meter:
    def __init__(self, limiter: RateLimiter, metrics=None, flush_s: float = FLUSH_S):
        self.limiter = limiter
        self.metrics = metrics
        self.flush_s = flush_s
        self._pending: list[Usage] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ticket(self, key: KeyInfo | None, record: ModelRecord, endpoint: str, streamed: bool) -> Ticket:
        return Ticket(self, key, record, endpoint, streamed)

    def record(self, usage: Usage) -> None:
        if usage.key_id is not None:
            self.limiter.used(usage.key_id, usage.input_tokens + usage.output_tokens, usage.cost_usd)
        if self.metrics is not None:
            self.metrics.tokens(usage.model_id, usage.input_tokens, usage.output_tokens)
        with self._lock:
            self._pending.append(usage)
        self._start()

    def flush(self) -> None:
        """Store every pending record now."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            try:
                record_usage(batch)
            except Exception:
                with self._lock:  # keep them for the next try rather than lose them
                    self._pending[:0] = batch
                raise

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

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
    """The metering of one request: opened when it is admitted, closed once with what it used."""

    def __init__(self, meter: Meter, key: KeyInfo | None, record: ModelRecord, endpoint: str, streamed: bool):
        self.meter, self.key, self.record = meter, key, record
        self.endpoint, self.streamed = endpoint, streamed
        self.start = time.perf_counter()
        self.closed = False

    def close(
        self,
        status: int,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float | None = None,
        cancelled: bool = False,
    ) -> None:
        if self.closed:
            return
        self.closed = True
        seconds = time.perf_counter() - self.start
        if cost_usd is None:
            price = self.record.price
            cost_usd = price.cost(input_tokens, output_tokens, seconds) if price else 0.0
        self.meter.record(
            Usage(
                model_id=self.record.id,
                endpoint=self.endpoint,
                status=status,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_usd,
                latency_s=seconds,
                key_id=self.key.id if self.key else None,
                key_name=self.key.name if self.key else None,
                streamed=self.streamed,
                cancelled=cancelled,
                created_at=datetime.now(UTC),
            )
        )

    def fail(self, exc: BaseException) -> None:
        self.close(getattr(exc, "http_status", 500))
