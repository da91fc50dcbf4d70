"""Per-key rate limits: requests and tokens per minute over a sliding window, and a budget.

The window is 60 seconds (``MODELATLAS_RATE_WINDOW_S`` changes it, e.g. for tests). Counts
live in this process, so a key's limits hold per server; the budget adds the spending already
in the store to what this server has metered since it started.

Tokens and spending are known only when a request ends, so counting them then let 20
simultaneous requests through a spent budget ($0.672 of $0.05) and a spent TPM limit (352 of
50). Each request now reserves its worst case when admitted (serve/reserve.py: its prompt and
max_tokens, priced) and settles to what it used when its ticket closes. A request is admitted
when its worst case fits what is left after what was used and what requests in flight have
reserved; with nothing in flight it is admitted while anything is left (it may go over by
itself), so a key never goes over a limit by more than one request's worth."""

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
    from modelatlas.errors import ConfigError

    value = os.environ.get("MODELATLAS_RATE_WINDOW_S")
    if not value:
        return DEFAULT_WINDOW_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(
            f"MODELATLAS_RATE_WINDOW_S={value!r} is not a number of seconds above 0.",
            hint=f"Set it to a number of seconds like {DEFAULT_WINDOW_S:g}, or unset it.",
        )
    return seconds


@dataclass(frozen=True)
class Worst:
    """The most one request can use: tokens (prompt and output) and their price."""

    tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Hold:
    """What one admitted request reserved against its key, until it settles (once)."""

    key_id: str
    worst: Worst
    settled: bool = False


@dataclass
class _Window:
    requests: deque = field(default_factory=deque)  # start times
    tokens: deque = field(default_factory=deque)  # (time, tokens)
    token_sum: int = 0
    reserved_tokens: int = 0  # by the requests in flight (holds)
    reserved_cost: float = 0.0
    holds: int = 0

    def prune(self, now: float, window: float) -> None:
        while self.requests and self.requests[0] <= now - window:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= now - window:
            self.token_sum -= self.tokens.popleft()[1]


def fits(used: float, w: _Window, reserved: float, worst: float, limit: float) -> bool:
    """Whether a request that may use ``worst`` fits what is left of ``limit``."""
    if w.holds == 0:
        return used < limit
    return used + reserved + worst <= limit


class RateLimiter:
    def __init__(self, window_s: float | None = None):
        self.window = window_s or window_seconds()
        self._windows: dict[str, _Window] = {}
        self._spent: dict[str, float] = {}

    def admit(
        self, key: KeyInfo, spent_before: float, worst: Worst | None = None
    ) -> tuple[dict[str, str], Hold]:
        """Count one request for ``key`` and reserve its ``worst`` case, or raise a 429;
        returns the x-ratelimit-* headers and the hold to settle when the request ends."""
        worst = worst or Worst()
        now = time.monotonic()
        w = self._windows.setdefault(key.id, _Window())
        w.prune(now, self.window)
        if key.rpm is not None and len(w.requests) >= key.rpm:
            wait = w.requests[0] + self.window - now
            raise self._over(key, w, now, f"{key.rpm} requests", wait)
        if key.tpm is not None and not fits(w.token_sum, w, w.reserved_tokens, worst.tokens, key.tpm):
            raise self._tokens_over(key, w, now, worst)
        spent = self.spent(key.id, spent_before)
        if key.budget_usd is not None and not fits(spent, w, w.reserved_cost, worst.cost_usd, key.budget_usd):
            raise self._budget_over(key, w, now, spent, worst)
        w.requests.append(now)
        w.reserved_tokens += worst.tokens
        w.reserved_cost += worst.cost_usd
        w.holds += 1
        return self.headers(key, w, now), Hold(key.id, worst)

    def settle(self, hold: Hold, tokens: int, cost_usd: float) -> None:
        """Release what ``hold`` reserved and count what its request used instead."""
        if hold.settled:
            return
        hold.settled = True
        w = self._windows.setdefault(hold.key_id, _Window())
        w.reserved_tokens -= hold.worst.tokens
        w.reserved_cost = max(0.0, w.reserved_cost - hold.worst.cost_usd)
        w.holds -= 1
        self.used(hold.key_id, tokens, cost_usd)

    def used(self, key_id: str, tokens: int, cost_usd: float) -> None:
        """Add a finished request's tokens and cost to the key's counts."""
        now = time.monotonic()
        w = self._windows.setdefault(key_id, _Window())
        if tokens:
            w.tokens.append((now, tokens))
            w.token_sum += tokens
        if key_id in self._spent:
            self._spent[key_id] += cost_usd

    def in_flight(self, key_id: str) -> int:
        """Requests of the key admitted and not settled yet."""
        w = self._windows.get(key_id)
        return w.holds if w else 0

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
            left = key.tpm - w.token_sum - w.reserved_tokens  # reserved: by requests in flight
            out["x-ratelimit-remaining-tokens"] = str(max(0, left))
            out["x-ratelimit-reset-tokens"] = _duration(reset)
        return out

    def _token_wait(self, w: _Window, tpm: int, now: float) -> float:
        excess = w.token_sum - tpm
        for moment, tokens in w.tokens:
            excess -= tokens
            if excess < 0:
                return moment + self.window - now
        return self.window

    def _tokens_over(self, key: KeyInfo, w: _Window, now: float, worst: Worst) -> QuotaExceededError:
        if w.token_sum >= key.tpm:
            return self._over(key, w, now, f"{key.tpm} tokens", self._token_wait(w, key.tpm, now))
        return QuotaExceededError(
            f"Key {key.name!r} has used {w.token_sum} tokens of its limit of {key.tpm} per "
            f"{self._window_name()} and {w.holds} requests in flight have reserved "
            f"{w.reserved_tokens}; this request may use up to {worst.tokens} (its prompt and "
            "max_tokens).",
            retry_after=1.0,  # when the requests in flight end, they settle to what they used
            headers=self.headers(key, w, now),
            hint="Retry after the time in the Retry-After header, or send a smaller max_tokens.",
        )

    def _budget_over(
        self, key: KeyInfo, w: _Window, now: float, spent: float, worst: Worst
    ) -> QuotaExceededError:
        headers = self.headers(key, w, now)
        if spent >= key.budget_usd:
            return QuotaExceededError(
                f"Key {key.name!r} has spent its budget of ${key.budget_usd:g} (spent ${spent:.6f}).",
                code="insufficient_quota",
                headers=headers,
                hint="Raise it with a new key (modelatlas keys create), or revoke this one.",
            )
        return QuotaExceededError(
            f"Key {key.name!r} has spent ${spent:.6f} of its budget of ${key.budget_usd:g} and "
            f"{w.holds} requests in flight have reserved ${w.reserved_cost:.6f}; this request "
            f"may cost up to ${worst.cost_usd:.6f} (its prompt and max_tokens).",
            code="insufficient_quota",
            retry_after=1.0,  # the requests in flight settle to what they used when they end
            headers=headers,
            hint="Retry when the requests in flight have ended, or send a smaller max_tokens.",
        )

    def _window_name(self) -> str:
        return f"{self.window:g} seconds" if self.window != 60 else "minute"

    def _over(self, key: KeyInfo, w: _Window, now: float, limit: str, wait: float) -> QuotaExceededError:
        return QuotaExceededError(
            f"Key {key.name!r} is over its limit of {limit} per {self._window_name()}.",
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
