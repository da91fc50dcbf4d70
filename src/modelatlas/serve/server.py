"""Running the API under uvicorn: a read timeout for request headers, and a graceful stop.

uvicorn (0.54, h11) closes idle keep-alive connections, but nothing times a client that sends
its request line and headers slowly: one byte every few seconds keeps a connection open for
ever (slowloris). The protocol here closes a connection whose request headers are not whole
within the read timeout, with a 408. The body's timeout is serve/guard.py's.

On SIGTERM uvicorn stops accepting and waits for running requests; the app's ``Shutdown``
learns the time too, and ends what still runs at ``--shutdown-timeout`` with an error (an
error event for a stream). uvicorn itself cancels whatever is left a little later.
"""

from __future__ import annotations

import json

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from modelatlas.serve.lifetime import Shutdown

GRACE_S = 5.0  # after the app's own deadline, for the error events to reach their clients


def run(app, host: str, port: int, *, read_timeout_s: float, shutdown_timeout_s: float, **options) -> None:
    """Serve ``app`` (from create_app) until SIGTERM or Ctrl-C; ``options`` go to uvicorn.Config."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=header_timed(read_timeout_s),
        timeout_graceful_shutdown=shutdown_timeout_s + GRACE_S,
        **options,
    )
    GracefulServer(config, app.state.shutdown).run()


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, shutdown: Shutdown):
        super().__init__(config)
        self.stopping = shutdown

    def handle_exit(self, sig, frame) -> None:
        self.stopping.begin()
        super().handle_exit(sig, frame)


def header_timed(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for each request's headers."""
    return type("HeaderTimedH11Protocol", (HeaderTimedProtocol,), {"header_timeout_s": timeout_s})


class HeaderTimedProtocol(H11Protocol):
    header_timeout_s = 30.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._waiting_since: float | None = self.loop.time()
        self._tick = self.loop.call_later(self._period, self._check)

    def connection_lost(self, exc) -> None:
        self._tick.cancel()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._waiting_since = self.loop.time()  # the next request's headers start a new clock

    @property
    def _period(self) -> float:
        return max(0.1, self.header_timeout_s / 4)

    def _check(self) -> None:
        """Every quarter of the timeout: close the connection if it has waited for whole
        request headers (h11's client state IDLE) for longer than the timeout."""
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self.conn.their_state is not h11.IDLE:
            self._waiting_since = None  # a request is being read or answered
        elif self._waiting_since is None:
            self._waiting_since = now
        elif now - self._waiting_since >= self.header_timeout_s:
            self._time_out()
            return
        self._tick = self.loop.call_later(self._period, self._check)

    def _time_out(self) -> None:
        # h11 cannot send a response before it has a request: the bytes are written as they are.
        message = f"The request headers did not arrive within {self.header_timeout_s:g} seconds."
        error = {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "request_timeout",
        }
        body = json.dumps({"error": error}).encode()
        head = (
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()
