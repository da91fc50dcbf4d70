"""One access-log line per request, written when the request is over (a stream: after its
last event, with the tokens it really used), and the metering of any request left open.

A pure ASGI middleware opens a note for each request; the gate adds the key (its id, never
the secret) and the model, the meter adds the request's tickets. The line is written when
both the response has ended and every ticket is closed, whichever comes last: a stream the
client left is closed by its generator when asyncio finalizes it, just after the response.

A ticket nobody closed (a stream whose body never started because the client left at once)
would hold its key's reservation forever and lock the key out; the middleware closes it as
cancelled after a grace period, which leaves that finalization time to close it first.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from dataclasses import dataclass, field

from modelatlas.errors import ModelAtlasError

log = logging.getLogger("modelatlas.access")
GRACE_S = 2.0
MAX_USER_CHARS = 128  # a longer identifier is cut: the line stays a line

_note: contextvars.ContextVar[RequestNote | None] = contextvars.ContextVar("modelatlas_access", default=None)


@dataclass
class RequestNote:
    method: str
    path: str
    client: str | None
    start: float = field(default_factory=time.perf_counter)
    key_id: str | None = None
    model: str | None = None
    end_user: str | None = None  # the request's safety_identifier or user, as the client sent it
    status: int | None = None  # the HTTP status sent
    tickets: list = field(default_factory=list)
    ended: bool = False  # the response is over
    logged: bool = False

    def ticket_closed(self) -> None:
        if self.ended:
            self._log_once()

    def end(self) -> None:
        self.ended = True
        if all(t.closed for t in self.tickets):
            self._log_once()

    def _log_once(self) -> None:
        if self.logged:
            return
        self.logged = True
        line = self.fields()
        for ticket in self.tickets:  # a stream that failed after its 200 started: its traceback
            error = ticket.error  # (serve/errors.py logs unexpected errors and 5xx answers itself)
            late = ticket.status >= 500 and (self.status or 500) < 500
            if late and isinstance(error, ModelAtlasError):
                log.error("error in the middle of a response", exc_info=error, extra={"access": line})
        log.info(_text(line), extra={"access": line})

    def fields(self) -> dict:
        closed = [t for t in self.tickets if t.closed]
        status = self.status or 500
        for ticket in closed:  # an error after the 200 went out is the request's real status
            if ticket.status >= 400 and status < 400:
                status = ticket.status
        return {
            "method": self.method,
            "path": self.path,
            "status": status,
            "model": self.model or (closed[0].record.id if closed else None),
            "key_id": self.key_id,
            "input_tokens": sum(t.input_tokens for t in closed),
            "output_tokens": sum(t.output_tokens for t in closed),
            "latency_ms": round((time.perf_counter() - self.start) * 1000, 1),
            "cancelled": any(t.cancelled for t in closed),
            "client": self.client,
            "end_user": self.end_user,
        }


def note_key(key) -> None:
    """The request is made with ``key`` (a KeyInfo)."""
    note = _note.get()
    if note is not None and key is not None:
        note.key_id = key.id


def note_model(model_id: str) -> None:
    note = _note.get()
    if note is not None:
        note.model = model_id


def note_user(req: object) -> None:
    """The end user a request names (OpenAI's ``safety_identifier``, or the older ``user``):
    it changes no answer, and is written in the access line, so that a team can trace the
    requests of one user of its application."""
    note = _note.get()
    who = getattr(req, "safety_identifier", None) or getattr(req, "user", None)
    if note is not None and isinstance(who, str) and who:
        note.end_user = who[:MAX_USER_CHARS]


def current() -> RequestNote | None:
    return _note.get()


class AccessLog:
    """Pure ASGI middleware: a note per HTTP request, the access line at its end."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        note = RequestNote(scope["method"], scope["path"], client[0] if client else None)
        token = _note.set(note)

        async def noting_status(message) -> None:
            if message["type"] == "http.response.start":
                note.status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            _note.reset(token)
            note.end()
            if not note.logged:  # a ticket still open: give its stream's finalizer time
                asyncio.get_running_loop().call_later(GRACE_S, _abandon, note)


def _abandon(note: RequestNote) -> None:
    for ticket in note.tickets:
        if not ticket.closed:
            ticket.close(note.status or 499, cancelled=True)
    note.end()


def _text(line: dict) -> str:
    tokens = f"{line['input_tokens']}+{line['output_tokens']}"
    text = (
        f'{line["client"] or "-"} "{line["method"]} {_safe(line["path"])}" {line["status"]} '
        f"model={line['model'] or '-'} key={line['key_id'] or '-'} tokens={tokens} "
        f"latency_ms={line['latency_ms']:g}"
    )
    if line["end_user"]:
        text += f" user={json.dumps(line['end_user'])}"
    return text + (" cancelled" if line["cancelled"] else "")


def _safe(text: str) -> str:
    """A path as it may be written on one line: control characters escaped (no forged lines)."""
    return "".join(c if c.isprintable() and c != '"' else c.encode("unicode_escape").decode() for c in text)
