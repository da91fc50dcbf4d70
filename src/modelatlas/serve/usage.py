"""GET /v1/usage: the calling key's own usage, summed by day or model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from modelatlas.errors import InvalidRequestError
from modelatlas.store.keys import KeyInfo
from modelatlas.store.usage import usage_totals


class UsageGroup(BaseModel):
    group: str
    requests: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float


class UsageReport(BaseModel):
    object: Literal["usage"] = "usage"
    key: str | None  # None when the server runs without authentication: every request
    by: Literal["day", "model"]
    since: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    data: list[UsageGroup]


async def report(meter, key: KeyInfo | None, by: str, since: str | None) -> UsageReport:
    moment = parse_since(since)
    await asyncio.to_thread(meter.flush)
    rows = await asyncio.to_thread(usage_totals, by, key_id=key.id if key else None, since=moment)
    data = [
        UsageGroup(
            group=r.group,
            requests=r.requests,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            total_tokens=r.total_tokens,
            cost_usd=r.cost_usd,
        )
        for r in rows
    ]
    return UsageReport(
        key=key.name if key else None,
        by=by,
        since=moment.isoformat() if moment else None,
        requests=sum(g.requests for g in data),
        input_tokens=sum(g.input_tokens for g in data),
        output_tokens=sum(g.output_tokens for g in data),
        total_tokens=sum(g.total_tokens for g in data),
        cost_usd=sum(g.cost_usd for g in data),
        data=data,
    )


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
