"""Prometheus metrics for the server, in the text exposition format (no client library needed).

Requests are counted by a pure ASGI middleware, which times the whole response (a streamed one
until its last event) without touching the body. The model of a request is noted by the model
pool when the request takes a queue slot (:func:`note_model`), so a label is always a model this
server serves. Token counts come from whoever meters usage, through :meth:`Metrics.tokens`.
Queue depth and loaded models are read from the pool when ``/metrics`` is scraped.
"""

from __future__ import annotations

import bisect
import contextvars
import math
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelatlas.serve.models import ServedModels

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from a cached answer or a health check up to a long generation on a CPU.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_labels: contextvars.ContextVar[dict | None] = contextvars.ContextVar("modelatlas_request", default=None)


def note_model(model_id: str) -> None:
    """Label the request being served with ``model_id`` (a no-op outside the middleware)."""
    labels = _labels.get()
    if labels is not None:
        labels["model"] = model_id


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: str) -> list[str]:
        out, total = [], 0
        for bound, count in zip((*map(_number, self.buckets), "+Inf"), self.counts, strict=True):
            total += count
            out.append(f'{name}_bucket{{{labels},le="{bound}"}} {total}')
        out.append(f"{name}_sum{{{labels}}} {_number(self.sum)}")
        out.append(f"{name}_count{{{labels}}} {total}")
        return out


class Metrics:
    """Counters and histograms of one server; ``render()`` is what ``GET /metrics`` answers."""

    def __init__(self, pool: ServedModels | None = None, buckets: tuple[float, ...] = LATENCY_BUCKETS):
        self.pool = pool
        self.buckets = buckets
        self._lock = threading.Lock()  # metering may call tokens() from a worker thread
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.input_tokens: Counter[str] = Counter()
        self.output_tokens: Counter[str] = Counter()
        self.latency: dict[tuple[str, str], Histogram] = {}

    def request(self, endpoint: str, model: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, model, str(status))] += 1
            histogram = self.latency.get((endpoint, model))
            if histogram is None:
                histogram = self.latency[(endpoint, model)] = Histogram(self.buckets)
            histogram.observe(seconds)

    def tokens(self, model_id: str, input_tokens: int, output_tokens: int) -> None:
        """Count the tokens one request read and wrote (the usage it answered)."""
        with self._lock:
            self.input_tokens[model_id] += max(0, input_tokens)
            self.output_tokens[model_id] += max(0, output_tokens)

    def render(self) -> str:
        with self._lock:
            lines = self._request_lines() + self._token_lines()
        lines += self._pool_lines()
        return "\n".join(lines) + "\n"

    def _request_lines(self) -> list[str]:
        lines = _header("modelatlas_requests_total", "counter", "Requests by endpoint, model and status.")
        for (endpoint, model, status), count in sorted(self.requests.items()):
            labels = f"{_labels_of(endpoint, model)},status={_quote(status)}"
            lines.append(f"modelatlas_requests_total{{{labels}}} {count}")
        name = "modelatlas_request_duration_seconds"
        lines += _header(name, "histogram", "Request latency, to the last byte of a streamed answer.")
        for (endpoint, model), histogram in sorted(self.latency.items()):
            lines += histogram.lines(name, _labels_of(endpoint, model))
        return lines

    def _token_lines(self) -> list[str]:
        lines = []
        for name, counts, what in [
            ("modelatlas_input_tokens_total", self.input_tokens, "Tokens read (prompts), by model."),
            ("modelatlas_output_tokens_total", self.output_tokens, "Tokens written (completions), by model."),
        ]:
            lines += _header(name, "counter", what)
            lines += [f"{name}{{model={_quote(m)}}} {n}" for m, n in sorted(counts.items())]
        return lines

    def _pool_lines(self) -> list[str]:
        if self.pool is None:
            return []
        pool, loaded = self.pool, set(self.pool.loaded)
        depth = _header("modelatlas_queue_depth", "gauge", "Requests holding or waiting for a slot.")
        up = _header("modelatlas_model_loaded", "gauge", "1 for each model loaded in memory, else 0.")
        for model in pool.records:
            depth.append(f"modelatlas_queue_depth{{model={_quote(model)}}} {pool.queue_depth(model)}")
            up.append(f"modelatlas_model_loaded{{model={_quote(model)}}} {int(model in loaded)}")
        memory = _header("modelatlas_loaded_memory_gb", "gauge", "Estimated memory of the loaded models.")
        memory.append(f"modelatlas_loaded_memory_gb {_number(pool.loaded_gb)}")
        budget = _header("modelatlas_memory_budget_gb", "gauge", "Memory the loaded models may use.")
        budget.append(f"modelatlas_memory_budget_gb {_number(pool.memory_budget_gb)}")
        return depth + up + memory + budget


class MetricsMiddleware:
    """Pure ASGI middleware: counts each HTTP request by status and times it, streams included."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        labels: dict = {"model": "", "status": None}
        token = _labels.set(labels)
        start = time.perf_counter()

        async def send_noting_status(message) -> None:
            if message["type"] == "http.response.start":
                labels["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception as exc:  # answered outside this middleware, by serve.errors.error_response
            if labels["status"] is None:
                labels["status"] = getattr(exc, "http_status", 500)
            raise
        finally:
            _labels.reset(token)
            endpoint = getattr(scope.get("route"), "path", None) or "other"  # bounded: no raw paths
            status = labels["status"] or 500
            self.metrics.request(endpoint, labels["model"], status, time.perf_counter() - start)


def _header(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _labels_of(endpoint: str, model: str) -> str:
    return f"endpoint={_quote(endpoint)},model={_quote(model)}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _number(value: float) -> str:
    return "+Inf" if value == math.inf else repr(float(value))
