"""API keys on the server: who is calling, and may they make this request now.

A verified key is remembered for one second, so a revoked key stops working within a second
while a busy client costs one database read per second, not per request."""

from __future__ import annotations

import asyncio
import ipaddress
import time

from modelatlas.errors import AuthenticationError, ConfigError, PermissionDeniedError
from modelatlas.serve.access_log import note_key, note_model
from modelatlas.serve.limits import Hold, RateLimiter, Worst
from modelatlas.store.keys import KeyInfo, verify_secret
from modelatlas.store.usage import key_totals

CACHE_S = 1.0
_CREATE = "Create one with `modelatlas keys create NAME` and send it as 'Authorization: Bearer <key>'."


class Gate:
    def __init__(self, enabled: bool, limiter: RateLimiter):
        self.enabled = enabled
        self.limiter = limiter
        self._cache: dict[str, tuple[KeyInfo | None, float]] = {}

    async def authenticate(self, authorization: str | None) -> KeyInfo | None:
        """The calling key (None when authentication is off); 401 when missing or not valid."""
        if not self.enabled:
            return None
        secret = _bearer(authorization)
        if not secret:
            raise AuthenticationError("You didn't provide an API key.", hint=_CREATE)
        key = await self._verify(secret)
        if key is None:
            raise AuthenticationError("Incorrect API key provided.", hint=_CREATE)
        if key.revoked_at is not None:
            raise AuthenticationError(f"The key {key.name!r} was revoked.", hint=_CREATE)
        if key.expired:
            raise AuthenticationError(
                f"The key {key.name!r} expired on {key.expires_at:%Y-%m-%d %H:%M} UTC.", hint=_CREATE
            )
        note_key(key)  # for the access log: the key's id, never its secret
        return key

    async def admit(
        self, key: KeyInfo | None, model_id: str, worst: Worst | None = None
    ) -> tuple[dict[str, str], Hold | None]:
        """Check the key may use the model and is within its limits, and reserve the request's
        ``worst`` case; the x-ratelimit-* headers and the hold that its ticket settles."""
        note_model(model_id)
        if key is None:
            return {}, None
        if not key.allows(model_id):
            raise PermissionDeniedError(
                f"The key {key.name!r} may not use {model_id}.",
                hint=f"It may use: {', '.join(key.models or [])}.",
            )
        spent = 0.0
        if key.budget_usd is not None and not self.limiter.knows(key.id):
            spent = (await asyncio.to_thread(key_totals, key.id)).cost_usd
        return self.limiter.admit(key, spent, worst)

    async def _verify(self, secret: str) -> KeyInfo | None:
        now = time.monotonic()
        hit = self._cache.get(secret)
        if hit is not None and now - hit[1] < CACHE_S:
            return hit[0]
        key = await asyncio.to_thread(verify_secret, secret)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[secret] = (key, now)
        return key


def check_no_auth(host: str) -> None:
    """--no-auth only where nobody else can reach the server."""
    if not is_loopback(host):
        raise ConfigError(
            f"--no-auth is refused on {host}: anyone who can reach it could use the models.",
            hint="Serve on 127.0.0.1 with --no-auth, or keep authentication on and create keys.",
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None
