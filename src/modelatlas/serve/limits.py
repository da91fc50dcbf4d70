"""Per-key rate limits: requests and tokens per minute over a sliding window, and a budget.

The window is 60 seconds (``MODELATLAS_RATE_WINDOW_S`` changes it, e.g. for tests). Counts
live in this process, so a key's limits hold per server; the budget adds the spending already
in the store to what this server has metered since it started."""

from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass, field

from modelatlas.errors import QuotaExceededError
from modelatlas.store.keys import KeyInfo

DEFAULT_WINDOW_S = 60.0


def window_seconds() -> float:
    value = os.environ.get("MODELATLAS_RATE_WINDOW_S")
    return float(value) if value else DEFAULT_WINDOW_S


@dataclass
class _Window:
    requests: deque = field(default_factory=deque)  # start times
    tokens: deque = field(default_factory=deque)  # (time, tokens)
    token_sum: int = 0

    def prune(self, now: float, window: float) -> None:
        while self.requests and self.requests[0] <= now - window:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= now - window:
            self.token_sum -= self.tokens.popleft()[1]


class RateLimiter:
    def __init__(self, window_s: float | None = None):
        self.window = window_s or window_seconds()
        self._windows: dict[str, _Window] = {}
        self._spent: dict[str, float] = {}

    def admit(self, key: KeyInfo, spent_before: float) -> dict[str, str]:
        """Count one request for ``key``, or raise a 429; returns the x-ratelimit-* headers."""
        now = time.monotonic()
        w = self._windows.setdefault(key.id, _Window())
        w.prune(now, self.window)
        if key.rpm is not None and len(w.requests) >= key.rpm:
            wait = w.requests[0] + self.window - now
            raise self._over(key, w, now, f"{key.rpm} requests", wait)
        if key.tpm is not None and w.token_sum >= key.tpm:
            wait = self._token_wait(w, key.tpm, now)
            raise self._over(key, w, now, f"{key.tpm} tokens", wait)
        spent = self.spent(key.id, spent_before)
        if key.budget_usd is not None and spent >= key.budget_usd:
            raise QuotaExceededError(
                f"Key {key.name!r} has spent its budget of ${key.budget_usd:g} (spent ${spent:.6f}).",
                code="insufficient_quota",
                headers=self.headers(key, w, now),
                hint="Raise it with a new key (modelatlas keys create), or revoke this one.",
            )
        w.requests.append(now)
        return self.headers(key, w, now)

    def used(self, key_id: str, tokens: int, cost_usd: float) -> None:
        """Add a finished request's tokens and cost to the key's counts."""
        now = time.monotonic()
        w = self._windows.setdefault(key_id, _Window())
        if tokens:
            w.tokens.append((now, tokens))
            w.token_sum += tokens
        if key_id in self._spent:
            self._spent[key_id] += cost_usd

    def spent(self, key_id: str, spent_before: float) -> float:
        """Spending so far: the store's total when first seen, plus what was metered here since."""
        return self._spent.setdefault(key_id, spent_before)

    def knows(self, key_id: str) -> bool:
        return key_id in self._spent

    def headers(self, key: KeyInfo, w: _Window, now: float) -> dict[str, str]:
        out: dict[str, str] = {}
        if key.rpm is not None:
            reset = (w.requests[0] + self.window - now) if w.requests else 0.0
            out["x-ratelimit-limit-requests"] = str(key.rpm)
            out["x-ratelimit-remaining-requests"] = str(max(0, key.rpm - len(w.requests)))
            out["x-ratelimit-reset-requests"] = _duration(reset)
        if key.tpm is not None:
            reset = (w.tokens[0][0] + self.window - now) if w.tokens else 0.0
            out["x-ratelimit-limit-tokens"] = str(key.tpm)
            out["x-ratelimit-remaining-tokens"] = str(max(0, key.tpm - w.token_sum))
            out["x-ratelimit-reset-tokens"] = _duration(reset)
        return out

    def _token_wait(self, w: _Window, tpm: int, now: float) -> float:
        excess = w.token_sum - tpm
        for moment, tokens in w.tokens:
            excess -= tokens
            if excess < 0:
                return moment + self.window - now
        return self.window

    def _over(self, key: KeyInfo, w: _Window, now: float, limit: str, wait: float) -> QuotaExceededError:
        window = f"{self.window:g} seconds" if self.window != 60 else "minute"
        return QuotaExceededError(
            f"Key {key.name!r} is over its limit of {limit} per {window}.",
            retry_after=max(wait, 0.001),
            headers=self.headers(key, w, now),
            hint="Retry after the time in the Retry-After header.",
        )


def _duration(seconds: float) -> str:
    """OpenAI's reset format: '1s', '6m0s', '20ms'."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"
