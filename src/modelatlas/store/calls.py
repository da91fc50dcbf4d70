"""The call log: one row per call through the Model wrapper."""

from __future__ import annotations

from sqlalchemy import select

from modelatlas.store.db import session
from modelatlas.store.schema import Call


def log_call(call) -> None:
    """Write a :class:`modelatlas.backends.model.CallRecord` (duck-typed: core knows no models)."""
    with session() as s:
        s.add(
            Call(
                model_id=call.model_id,
                kind=call.kind,
                ok=call.ok,
                input_tokens=call.usage.input_tokens,
                output_tokens=call.usage.output_tokens,
                cost_usd=call.usage.cost_usd,
                latency_s=call.timing.latency_s,
                ttft_s=call.timing.ttft_s,
                tokens_per_s=call.timing.tokens_per_s,
                error=call.error,
            )
        )


def recent_calls(limit: int = 50, model_id: str | None = None) -> list[Call]:
    with session() as s:
        query = select(Call).order_by(Call.id.desc()).limit(limit)
        if model_id:
            query = query.where(Call.model_id == model_id)
        return list(s.scalars(query).all())
