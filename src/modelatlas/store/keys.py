"""API keys for `modelatlas serve`. A secret is shown once; only its salted hash is stored.

A secret reads ``ma-<id>-<random>``: the id finds the row, the hash of the whole secret with
the row's salt proves it. Secrets carry 256 random bits, so one salted SHA-256 is enough (a
slow password hash would add milliseconds to every request for no gain)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from modelatlas.errors import ConfigError, KeyConflictError, UnknownKeyError
from modelatlas.store.db import session
from modelatlas.store.schema import ApiKey, as_utc, utcnow

PREFIX = "ma-"


@dataclass(frozen=True)
class KeyInfo:
    """What is known about a key, never its secret."""

    id: str
    name: str
    rpm: int | None
    tpm: int | None
    budget_usd: float | None
    models: list[str] | None
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.expired

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and as_utc(self.expires_at) <= utcnow()

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at else "expired" if self.expired else "active"

    def allows(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models


def create_key(
    name: str,
    *,
    rpm: int | None = None,
    tpm: int | None = None,
    budget_usd: float | None = None,
    models: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[KeyInfo, str]:
    """A new key and its secret (the only time the secret exists outside the caller)."""
    name = name.strip()
    if not name:
        raise KeyConflictError("A key needs a name.", hint="Run: modelatlas keys create NAME")
    for label, value in (("--rpm", rpm), ("--tpm", tpm), ("--budget", budget_usd)):
        if value is not None and value <= 0:
            raise KeyConflictError(
                f"{label} must be more than 0, not {value}.", hint="Leave it out for no limit."
            )
    key_id = secrets.token_hex(6)
    secret = f"{PREFIX}{key_id}-{secrets.token_urlsafe(32)}"
    salt = secrets.token_hex(16)
    with session() as s:
        if s.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
            raise KeyConflictError(
                f"A key named {name!r} exists already.",
                hint=f"Pick another name, or revoke it first: modelatlas keys revoke {name}",
            )
        row = ApiKey(
            id=key_id,
            name=name,
            salt=salt,
            secret_hash=_hash(salt, secret),
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget_usd,
            models=list(models) if models else None,
            expires_at=expires_at,
            created_at=utcnow(),
        )
        s.add(row)
        s.flush()
        info = _info(row)
    return info, secret


def list_keys(include_revoked: bool = True) -> list[KeyInfo]:
    with session() as s:
        rows = s.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        keys = [_info(r) for r in rows]
    return [k for k in keys if include_revoked or k.revoked_at is None]


def get_key(name_or_id: str) -> KeyInfo:
    with session() as s:
        row = s.get(ApiKey, name_or_id) or s.scalar(select(ApiKey).where(ApiKey.name == name_or_id))
        if row is None:
            raise UnknownKeyError(name_or_id, s.scalars(select(ApiKey.name)).all())
        return _info(row)


def revoke_key(name_or_id: str) -> KeyInfo:
    """Revoke a key (it stays listed, as revoked, with its usage)."""
    key = get_key(name_or_id)
    with session() as s:
        row = s.get(ApiKey, key.id)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        s.flush()
        return _info(row)


def verify_secret(secret: str) -> KeyInfo | None:
    """The key whose secret this is (active or not), or None when no key has this secret."""
    if not secret.startswith(PREFIX):
        return None
    key_id = secret[len(PREFIX) :].split("-", 1)[0]
    with session() as s:
        row = s.get(ApiKey, key_id)
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(row.salt, secret)):
            return None
        return _info(row)


def parse_expiry(text: str | None) -> datetime | None:
    """A date, a date-time (UTC unless a zone is given), or a duration from now (30d, 12h, 90m)."""
    if not text:
        return None
    text = text.strip()
    match = re.fullmatch(r"(\d+)\s*([dhm])", text)
    if match:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
        return datetime.now(UTC) + timedelta(**{unit: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--expires {text!r} is not a date.", hint="Use a date like 2026-12-31, or a duration like 30d."
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise ConfigError(f"--expires {text} is in the past.", hint="Give a later date.")
    return moment


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        rpm=row.rpm,
        tpm=row.tpm,
        budget_usd=row.budget_usd,
        models=list(row.models) if row.models else None,
        expires_at=as_utc(row.expires_at),
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at),
    )
