"""Usage records of `modelatlas serve`: one row per request, summed by day, model or key.

A row is written when its request starts (state "in_flight") and completed when it ends
("done"); one a server left open at a graceful stop is "interrupted". A row still in flight
is a request running now, or one whose server was killed: either way it is counted, and the
totals say how many of their requests are unfinished."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import case, func, select, update

from modelatlas.errors import InvalidRequestError
from modelatlas.processes import pid_alive, this_host
from modelatlas.store.db import session
from modelatlas.store.schema import UsageRecord

GROUPS = ("day", "model", "key")


@dataclass(frozen=True)
class Usage:
    """One request's metered usage, as the server writes it."""

    model_id: str
    endpoint: str
    status: int
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    key_id: str | None = None
    key_name: str | None = None
    streamed: bool = False
    cancelled: bool = False
    created_at: datetime | None = None
    request_id: str | None = None
    state: str = "done"  # or "in_flight", "interrupted"
    server_pid: int | None = None
    server_host: str | None = None
    audio_seconds: float = 0.0  # the audio a transcription took in (what speech is billed by)
    images: int = 0  # the pictures an image-generation request made (what image models bill by)


@dataclass(frozen=True)
class UsageTotal:
    """Usage summed over a group (a day, a model or a key)."""

    group: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unfinished: int = 0  # requests in flight, or cut off by a crash or a stop
    audio_seconds: float = 0.0  # transcribed audio
    images: int = 0  # pictures made

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def record_usage(records: list[Usage], finished: list[Usage] = ()) -> None:
    """Write new usage records and complete ``finished`` ones (found by their request id,
    written in flight before) in one transaction."""
    if not records and not finished:
        return
    with session() as s:
        now = datetime.now(UTC)
        s.add_all(UsageRecord(**{**asdict(r), "created_at": r.created_at or now}) for r in records)
        for r in finished:
            values = {k: v for k, v in asdict(r).items() if k not in ("request_id", "created_at")}
            query = update(UsageRecord).where(UsageRecord.request_id == r.request_id).values(**values)
            if s.execute(query).rowcount == 0:  # its in-flight row is gone: write it whole
                s.add(UsageRecord(**{**asdict(r), "created_at": r.created_at or now}))


def settle_dead_servers() -> int:
    """Mark "interrupted" the in-flight rows of servers on this host that are gone (killed
    outright, so they could not say so themselves); the number of rows changed."""
    host = this_host()
    with session() as s:
        owners = s.execute(
            select(UsageRecord.server_pid)
            .where(UsageRecord.state == "in_flight", UsageRecord.server_host == host)
            .distinct()
        ).scalars()
        dead = [pid for pid in owners if pid is not None and not pid_alive(pid)]
        if not dead:
            return 0
        query = (
            update(UsageRecord)
            .where(UsageRecord.state == "in_flight", UsageRecord.server_host == host)
            .where(UsageRecord.server_pid.in_(dead))
            .values(state="interrupted")
        )
        return s.execute(query).rowcount


def usage_totals(
    by: str = "day", *, key_id: str | None = None, since: datetime | None = None
) -> list[UsageTotal]:
    """Requests, tokens and cost per day, model or key (oldest day or largest cost first)."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}, not {by!r}")
    column = {
        "day": func.substr(func.cast(UsageRecord.created_at, _text()), 1, 10),
        "model": UsageRecord.model_id,
        "key": func.coalesce(UsageRecord.key_name, "(no key)"),
    }[by]
    query = select(
        column.label("group"),
        func.count(),
        func.coalesce(func.sum(UsageRecord.input_tokens), 0),
        func.coalesce(func.sum(UsageRecord.output_tokens), 0),
        func.coalesce(func.sum(UsageRecord.cost_usd), 0.0),
        _unfinished(),
        func.coalesce(func.sum(UsageRecord.audio_seconds), 0.0),
        func.coalesce(func.sum(UsageRecord.images), 0),
    ).group_by(column)
    query = _filtered(query, key_id, since)
    with session() as s:
        rows = [
            UsageTotal(str(g), int(n), int(i), int(o), float(c), int(u), float(a), int(m))
            for g, n, i, o, c, u, a, m in s.execute(query)
        ]
    if by == "day":
        return sorted(rows, key=lambda r: r.group)
    return sorted(rows, key=lambda r: (-r.cost_usd, -r.total_tokens, r.group))


def key_totals(key_id: str, since: datetime | None = None) -> UsageTotal:
    """One key's requests, tokens and cost (since a moment, or ever)."""
    query = _filtered(
        select(
            func.count(),
            func.coalesce(func.sum(UsageRecord.input_tokens), 0),
            func.coalesce(func.sum(UsageRecord.output_tokens), 0),
            func.coalesce(func.sum(UsageRecord.cost_usd), 0.0),
            _unfinished(),
            func.coalesce(func.sum(UsageRecord.audio_seconds), 0.0),
            func.coalesce(func.sum(UsageRecord.images), 0),
        ),
        key_id,
        since,
    )
    with session() as s:
        n, i, o, c, u, a, m = s.execute(query).one()
    return UsageTotal(key_id, int(n), int(i), int(o), float(c), int(u), float(a), int(m))


def usage_records(
    *, key_id: str | None = None, since: datetime | None = None, limit: int | None = None
) -> list[Usage]:
    """The records themselves, newest first."""
    query = _filtered(select(UsageRecord), key_id, since).order_by(UsageRecord.id.desc())
    if limit:
        query = query.limit(limit)
    with session() as s:
        return [_usage(r) for r in s.scalars(query)]


def parse_since(text: str | None) -> datetime | None:
    """A date or date-time (ISO 8601; UTC when no zone is given)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(
            f"'since' must be a date like 2026-11-01 or 2026-11-01T09:30, not {text!r}.",
            hint="Use ISO 8601.",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _filtered(query, key_id: str | None, since: datetime | None):
    if key_id is not None:
        query = query.where(UsageRecord.key_id == key_id)
    if since is not None:
        query = query.where(UsageRecord.created_at >= since)
    return query


def _unfinished():
    return func.coalesce(func.sum(case((UsageRecord.state != "done", 1), else_=0)), 0)


def _text():
    from sqlalchemy import String

    return String()


def _usage(row: UsageRecord) -> Usage:
    return Usage(**{f.name: getattr(row, f.name) for f in fields(Usage)})
