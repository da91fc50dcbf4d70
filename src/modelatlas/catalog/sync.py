"""`modelatlas catalog sync`: refresh the user's catalog snapshot from models.dev.

The source is models.dev's ``api.json`` (by default the live one), a local ``api.json`` file, or
a local models.dev checkout. The new snapshot replaces the old one atomically, and only once
the whole catalog has been read and validated: any failure keeps the previous snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx

from modelatlas.catalog.modelsdev import read_tree, to_records
from modelatlas.catalog.snapshot import Snapshot, current_path, peek, user_path, write_snapshot
from modelatlas.errors import CatalogDataError, CatalogSyncError

DEFAULT_SOURCE = "https://models.dev/api.json"
TIMEOUT_S = 20.0
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def sync(source: str | None = None) -> Snapshot:
    """Read the catalog from ``source``, write it as the user's snapshot, and return it."""
    source = source or DEFAULT_SOURCE
    api = read_source(source)
    try:
        records = to_records(api)
    except CatalogDataError as exc:
        raise CatalogDataError(f"{source}: {exc.message}", hint=_kept()) from None
    if not records:
        raise CatalogSyncError(f"{source} lists no models; the catalog was not replaced.", hint=_kept())
    date = newest_date(api) or dt.date.today().isoformat()
    try:
        path = write_snapshot(user_path(), records, date=date, source=source)
    except OSError as exc:
        raise CatalogSyncError(
            f"The catalog could not be saved to {user_path()}: {exc.strerror or exc}.", hint=_kept()
        ) from None
    return Snapshot(date=date, source=source, records=records, path=path)


def read_source(source: str) -> dict[str, Any]:
    """The catalog in the api.json shape, from a URL, an api.json file or a checkout folder."""
    if re.match(r"https?://", source, re.I):
        return _parse(_fetch(source), source)
    path = Path(source).expanduser()
    if path.is_dir():
        return read_tree(path)
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise CatalogSyncError(
            f"The catalog could not be read from {source} ({exc.strerror or exc}).", hint=_kept()
        ) from None
    return _parse(body, source)


def newest_date(api: dict[str, Any]) -> str | None:
    """The newest full ``last_updated`` date in the data: the day the catalog is "as of"."""
    days = [
        m.get("last_updated")
        for p in api.values()
        if isinstance(p, dict) and isinstance(p.get("models"), dict)
        for m in p["models"].values()
        if isinstance(m, dict)
    ]
    return max((d for d in days if isinstance(d, str) and _DAY.fullmatch(d)), default=None)


def _fetch(url: str) -> bytes:
    try:
        response = httpx.get(url, timeout=TIMEOUT_S, follow_redirects=True)
        response.raise_for_status()
        return response.content
    except httpx.HTTPStatusError as exc:
        reason = f"HTTP {exc.response.status_code} {exc.response.reason_phrase}"
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    raise CatalogSyncError(f"The catalog could not be fetched from {url} ({reason}).", hint=_kept())


def _parse(body: bytes, source: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise CatalogDataError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.", hint=_kept()
        ) from None
    except UnicodeDecodeError as exc:
        raise CatalogDataError(f"{source} is not UTF-8 text (byte {exc.start}).", hint=_kept()) from None
    except RecursionError:
        # json's parser recurses once per level: thousands of nested [ or { exhaust the stack.
        raise CatalogDataError(
            f"{source} is not a models.dev api.json: its values are nested too deeply.", hint=_kept()
        ) from None
    if not isinstance(data, dict):
        raise CatalogDataError(
            f"{source} is not a models.dev api.json: expected an object of providers, "
            f"got {type(data).__name__}.",
            hint=_kept(),
        )
    return data


def _kept() -> str:
    """What the user has now, and how to sync from a local checkout instead."""
    path = current_path()
    try:
        date = peek(path).get("date") or "undated"
        kept = f"The previous snapshot ({path}, dated {date}) is kept."
    except (OSError, EOFError, ValueError):
        kept = "No readable previous snapshot exists."
    return f"{kept} To sync from a local models.dev checkout: modelatlas catalog sync --source PATH"
