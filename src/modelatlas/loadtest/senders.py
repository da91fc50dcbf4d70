"""Send one chat request and time it: over HTTP to an OpenAI-compatible server, or through a
hosted model's own client (the Model wrapper, with retries off so a 429 counts as one)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Protocol

from modelatlas.backends.messages import as_messages
from modelatlas.loadtest.results import RequestSample

if TYPE_CHECKING:
    import httpx

    from modelatlas.backends.model import Model
    from modelatlas.types import Message

TIMEOUT_S = 300.0


class Sender(Protocol):
    where: str

    async def send(self, messages: list[Message], max_tokens: int, started_s: float) -> RequestSample: ...

    async def aclose(self) -> None: ...


def chat_url(base_url: str) -> str:
    """``BASE/chat/completions``; a base URL given without a path gets OpenAI's ``/v1``."""
    from urllib.parse import urlsplit

    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base + "/chat/completions"


class HttpSender:
    """Streams from ``POST {base}/chat/completions`` with ``stream_options.include_usage``, so
    the token counts are the server's own."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, client: httpx.AsyncClient | None = None
    ):
        import httpx

        self.where = base_url
        self.url = chat_url(base_url)
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        self.client = client or httpx.AsyncClient(headers=headers, timeout=TIMEOUT_S, limits=limits)

    def body(self, messages: list[Message], max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": as_messages(messages),
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    async def send(self, messages: list[Message], max_tokens: int, started_s: float) -> RequestSample:
        import httpx

        t0 = time.perf_counter()
        sample = RequestSample(started_s=started_s)
        chunks, usage_seen = 0, False
        try:
            async with self.client.stream("POST", self.url, json=self.body(messages, max_tokens)) as response:
                sample.status = response.status_code
                if response.status_code != 200:
                    sample.error = _error_text(response.status_code, await response.aread())
                else:
                    chunks, usage_seen = await self._read(response, sample, t0)
        except httpx.HTTPError as exc:
            sample.status, sample.error = 0, f"{type(exc).__name__}: {exc}"[:300]
        except ValueError as exc:  # an event that is not JSON: not an OpenAI-compatible stream
            sample.error = f"The server's stream is not OpenAI's: {exc}"[:300]
        sample.e2e_s = time.perf_counter() - t0
        if sample.ok and not usage_seen:
            # A server that ignores include_usage (llama_cpp.server): one token per text chunk.
            sample.output_tokens, sample.usage_reported = chunks, False
            if not chunks:  # llama_cpp.server answers a request it interrupted so: 200, no text
                sample.error = "The server answered 200 with no text and no usage (an interrupted request?)."
        return sample

    async def _read(self, response: httpx.Response, sample: RequestSample, t0: float) -> tuple[int, bool]:
        """Fills ``sample`` from the events; the number of text chunks, and whether usage came."""
        chunks, usage_seen = 0, False
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = json.loads(data)
            if "error" in event:
                sample.error = _message_of(event)
                break
            for choice in event.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    chunks += 1
                    if sample.ttft_s is None:
                        sample.ttft_s = time.perf_counter() - t0
            usage = event.get("usage")
            if usage:
                usage_seen = True
                sample.input_tokens = int(usage.get("prompt_tokens") or 0)
                sample.output_tokens = int(usage.get("completion_tokens") or 0)
        return chunks, usage_seen

    async def aclose(self) -> None:
        await self.client.aclose()


class ModelSender:
    """A hosted model through its backend's client: the provider's own endpoint and key."""

    def __init__(self, model: Model):
        self.model = model
        self.where = getattr(model.backend, "where", None) or model.id

    async def send(self, messages: list[Message], max_tokens: int, started_s: float) -> RequestSample:
        from modelatlas.errors import ModelAtlasError

        t0 = time.perf_counter()
        sample = RequestSample(started_s=started_s)
        try:
            async for chunk in self.model.stream(messages, max_tokens=max_tokens, temperature=0.0):
                if chunk.text and sample.ttft_s is None:
                    sample.ttft_s = time.perf_counter() - t0
                if chunk.usage is not None:
                    sample.input_tokens = chunk.usage.input_tokens
                    sample.output_tokens = chunk.usage.output_tokens
                    sample.cost_usd = chunk.usage.cost_usd
        except ModelAtlasError as exc:
            sample.status, sample.error = exc.http_status, exc.message[:300]
        sample.e2e_s = time.perf_counter() - t0
        return sample

    async def aclose(self) -> None:
        await self.model.aclose()


def _error_text(status: int, body: bytes) -> str:
    try:
        return f"HTTP {status}: {_message_of(json.loads(body))}"
    except (ValueError, TypeError):
        return f"HTTP {status}: {body[:200].decode(errors='replace')}"


def _message_of(event: Any) -> str:
    error = event.get("error") if isinstance(event, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error or event)[:300]
