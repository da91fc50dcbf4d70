"""What every request must pass before the application reads its body.

FastAPI parses a route's JSON body before it runs the route's dependencies, so checking the
key in a dependency came too late: twelve unauthenticated 50 MB POSTs took a server from
100 MB to 1.36 GB. Here, in order, with nothing of the body read yet:

1. the Host header, when authentication is off (a DNS-rebinding page reaches 127.0.0.1 under
   its own name; it has no key, so with keys on it gets 401 anyway);
2. the API key, for every request that may carry a body (GET routes check it as before);
3. the body's size: a Content-Length over the limit is refused at once, a chunked body as soon
   as what arrived passes it;
4. how fast the body arrives: all of it within ``read_timeout_s`` (a client sending a byte a
   second would otherwise hold a connection and its buffer forever).

The body, once whole, is handed to the application as one message; later ``receive`` calls go
to the server, so the routes still see the client leave (``http.disconnect``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from starlette.responses import Response

from modelatlas.errors import ModelAtlasError
from modelatlas.hosts import host_allowed
from modelatlas.serve.errors import (
    HostNotAllowedError,
    RequestTimeoutError,
    RequestTooLargeError,
    error_response,
)

DEFAULT_MAX_BODY_MB = 16.0
DEFAULT_READ_TIMEOUT_S = 30.0
KEY_SCOPE = "modelatlas.key"  # where the key checked here waits for the route's dependency
_NO_BODY = {"GET", "HEAD", "OPTIONS"}


class RequestGuard:
    """Pure ASGI middleware (so nothing buffers the body before it runs)."""

    def __init__(
        self,
        app,
        gate,
        max_body_mb: float = DEFAULT_MAX_BODY_MB,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        hosts: Iterable[str] | None = None,
        path_limits_mb: dict[str, float] | None = None,
    ):
        self.app, self.gate = app, gate
        self.max_bytes = int(max_body_mb * 2**20)
        # Routes with their own limit: an audio upload may be larger than any JSON request.
        self.path_limits = {path: int(mb * 2**20) for path, mb in (path_limits_mb or {}).items()}
        self.read_timeout_s = read_timeout_s
        self.hosts = None if hosts is None else list(hosts)  # None: any Host (keys are on)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._check_head(scope)
            body = await self._read_body(scope, receive)
        except _ClientGone:  # nobody reads it; the access log and /metrics see the 499
            await Response(status_code=499)(scope, receive, send)
            return
        except ModelAtlasError as exc:
            response = error_response(exc)
            if isinstance(exc, RequestTimeoutError):  # a slow client is not kept waiting for
                response.headers["Connection"] = "close"
            # Otherwise the server reads and drops the rest of the body (no memory kept), so
            # that a client which writes its whole body before reading still gets the answer.
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _check_head(self, scope) -> None:
        headers = _headers(scope)
        if self.hosts is not None and not host_allowed(headers.get("host"), self.hosts):
            raise HostNotAllowedError(
                f"This server does not answer requests for the host {headers.get('host')!r}.",
                hint="Call it as http://127.0.0.1:PORT (or localhost); a page of another site "
                "cannot use a server that runs with --no-auth.",
            )
        if scope["method"] not in _NO_BODY and self.gate.enabled:
            scope[KEY_SCOPE] = await self.gate.authenticate(headers.get("authorization"))
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > self._limit(scope):
            raise self._too_large(scope)

    async def _read_body(self, scope, receive) -> bytes:
        if scope["method"] in _NO_BODY and "content-length" not in _headers(scope):
            return b""
        deadline = time.monotonic() + self.read_timeout_s
        limit = self._limit(scope)
        parts: list[bytes] = []
        size = 0
        more = True
        while more:
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.001))
            except TimeoutError:
                raise RequestTimeoutError(
                    f"The request body did not arrive within {self.read_timeout_s:g} seconds.",
                    hint="Send the whole body at once, or raise the server's --read-timeout.",
                ) from None
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(scope)
            parts.append(chunk)
            more = message.get("more_body", False)
        return b"".join(parts)

    def _limit(self, scope) -> int:
        return self.path_limits.get(scope.get("path", ""), self.max_bytes)

    def _too_large(self, scope) -> RequestTooLargeError:
        limit = self._limit(scope) / 2**20
        if scope.get("path") in self.path_limits:
            hint = "Send a shorter or compressed recording, or start the server with a larger --max-audio-mb."
        else:
            hint = (
                "Send a smaller request (fewer or shorter messages), or start the server with "
                "a larger --max-body-mb."
            )
        message = f"The request body is over this server's limit of {limit:g} MB."
        return RequestTooLargeError(message, hint=hint)


class _ClientGone(Exception):
    """The client left before its body arrived: nobody to answer."""


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _replay(body: bytes, receive):
    """A receive that gives the whole body once, then the server's messages (disconnect)."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
