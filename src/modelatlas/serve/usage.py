"""GET /v1/usage: the calling key's own usage, summed by day or model.

``unfinished`` counts the requests among them with no final record: running now, or cut off
when their server was killed (their tokens and cost are not known, and count as 0)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Literal

from pydantic import BaseModel

from modelatlas.store.keys import KeyInfo
from modelatlas.store.usage import parse_since, usage_totals


class UsageGroup(BaseModel):
    group: str
    requests: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    unfinished: int = 0
    audio_seconds: float = 0.0  # transcribed audio (POST /v1/audio/transcriptions)
    images: int = 0  # pictures made (POST /v1/images/generations)


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
    unfinished: int = 0
    audio_seconds: float = 0.0
    images: int = 0
    data: list[UsageGroup]


async def report(meter, key: KeyInfo | None, by: str, since: str | None) -> UsageReport:
    moment = parse_since(since)
    await asyncio.to_thread(meter.flush)
    rows = await asyncio.to_thread(usage_totals, by, key_id=key.id if key else None, since=moment)
    data = [UsageGroup(**asdict(r), total_tokens=r.total_tokens) for r in rows]
    return UsageReport(
        key=key.name if key else None,
        by=by,
        since=moment.isoformat() if moment else None,
        requests=sum(g.requests for g in data),
        input_tokens=sum(g.input_tokens for g in data),
        output_tokens=sum(g.output_tokens for g in data),
        total_tokens=sum(g.total_tokens for g in data),
        cost_usd=sum(g.cost_usd for g in data),
        unfinished=sum(g.unfinished for g in data),
        audio_seconds=sum(g.audio_seconds for g in data),
        images=sum(g.images for g in data),
        data=data,
    )
