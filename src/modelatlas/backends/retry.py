"""Retry with exponential backoff that honours the provider's Retry-After."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from modelatlas.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    jitter: float = 0.1

    def delay(self, attempt: int, error: TransientError) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_retry_after_s)
        backoff = min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)
        return backoff * (1 + random.uniform(-self.jitter, self.jitter))


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_retry: Callable[[int, TransientError, float], None] | None = None,
) -> T:
    """Run ``call`` until it succeeds, a non-transient error occurs, or attempts run out."""
    attempt = 1
    while True:
        try:
            return await call()
        except TransientError as error:
            if attempt >= policy.max_attempts:
                raise
            wait = policy.delay(attempt, error)
            if on_retry:
                on_retry(attempt, error, wait)
            await asyncio.sleep(wait)
            attempt += 1
