"""Deployments: the servers running on this machine, API keys (create, revoke) and usage charts.

The same functions as `modelatlas keys` and `modelatlas usage`. A new key's secret is shown once
and stored nowhere but as a salted hash: the form that creates the key answers with a redirect
(post/redirect/get, so a reload never re-posts it), and the page it leads to shows the secret,
held in this process's memory until that one read or for at most SECRET_TTL_S."""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs, quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from modelatlas.errors import ModelAtlasError
from modelatlas.studio.web import render

router = APIRouter()
SECRET_TTL_S = 300
_new_secrets: dict[str, tuple[str, str, float]] = {}  # token -> (key name, secret, monotonic time)


@router.get("/deployments")
def deployments_page(request: Request):
    token = request.query_params.get("created")
    if token is None:
        return _page(request)
    name, secret = _take_secret(token)
    if secret is None:
        return _page(request, shown_before=name or "the key")
    return _page(request, created_name=name, secret=secret)


def _take_secret(token: str) -> tuple[str | None, str | None]:
    """(key name, secret) kept for ``token``, forgotten as it is read; (None, None) once it was."""
    now = time.monotonic()
    for stale in [t for t, (_, _, at) in _new_secrets.items() if now - at > SECRET_TTL_S]:
        del _new_secrets[stale]
    name, secret, _ = _new_secrets.pop(token, (None, None, 0.0))
    return name, secret


@router.post("/deployments/keys")
async def create_key_form(request: Request):
    from modelatlas.store.keys import create_key, parse_expiry

    form = await _form(request)
    try:
        key, secret = create_key(
            form.get("name", ""),
            rpm=_number(form, "rpm"),
            tpm=_number(form, "tpm"),
            budget_usd=_number(form, "budget", float),
            models=[m.strip() for m in form.get("models", "").split(",") if m.strip()] or None,
            expires_at=parse_expiry(form.get("expires") or None),
        )
    except (ModelAtlasError, ValueError) as exc:
        return _page(request, error=_message(exc), form=form)  # 200: a 4xx shows as a console error
    token = secrets.token_urlsafe(16)
    _new_secrets[token] = (key.name, secret, time.monotonic())
    return RedirectResponse(f"/deployments?created={quote(token)}#keys", status_code=303)


@router.post("/deployments/keys/{name}/revoke")
def revoke_key_form(request: Request, name: str):
    from modelatlas.store.keys import revoke_key

    revoke_key(name)
    return RedirectResponse(f"/deployments?revoked={name}#keys", status_code=303)


def _page(request: Request, status_code: int = 200, **context):
    from modelatlas.serve.deployments import list_deployments
    from modelatlas.store.keys import list_keys
    from modelatlas.store.usage import usage_totals

    servers = [_with_health(d) for d in list_deployments()]
    by_key = {t.group: t for t in usage_totals("key")}
    by_model = usage_totals("model")
    by_day = usage_totals("day")
    return render(
        request,
        "deployments.html",
        status_code=status_code,
        servers=servers,
        keys=list_keys(),
        by_key=by_key,
        by_model=by_model,
        figures=_figures(list(by_key.values()), by_model, by_day),
        revoked=request.query_params.get("revoked"),
        **context,
    )


def _with_health(deployment: dict) -> dict:
    """The server's /health, asked from here (the browser only ever talks to the studio)."""
    base = deployment["url"].removesuffix("/v1")
    try:
        health = httpx.get(f"{base}/health", timeout=0.5).json()
    except (httpx.HTTPError, ValueError):
        health = None
    return {**deployment, "health": health}


def _figures(by_key, by_model, by_day) -> list[tuple[str, dict, str]]:
    figures = []
    if by_key:
        figures.append(("usage-keys", _bars(by_key), _caption(by_key, "key")))
    if by_model:
        figures.append(("usage-models", _bars(by_model), _caption(by_model, "model")))
    if len(by_day) > 1:
        figures.append(("usage-days", _bars(by_day), _caption(by_day, "day")))
    return figures


def _caption(rows, per: str) -> str:
    """What the chart shows; with every request free (local models), no cost axis, and it says so."""
    if any(r.cost_usd for r in rows):
        return f"Tokens and cost per {per}"
    return f"Tokens per {per} (all free: every request here cost nothing, so no cost is drawn)"


def _bars(rows) -> dict:
    """Tokens as bars and cost (USD, on a second axis from 0) as points; no cost when all free."""
    names = [r.group for r in rows]
    tokens = {
        "type": "bar",
        "name": "tokens",
        "x": names,
        "y": [r.total_tokens for r in rows],
        "marker": {"color": "#2457a6"},
    }
    cost = {
        "type": "scatter",
        "mode": "markers",
        "name": "cost (USD)",
        "x": names,
        "y": [r.cost_usd for r in rows],
        "yaxis": "y2",
        "marker": {"color": "#c2410c", "size": 10},
    }
    layout = {
        "yaxis": {"title": {"text": "tokens (in + out)"}, "rangemode": "tozero", "automargin": True},
        "yaxis2": {
            "title": {"text": "USD"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "tickprefix": "$",
            "automargin": True,
        },
        "xaxis": {"automargin": True},
        "legend": {"orientation": "h"},
        "font": {"family": "system-ui, sans-serif"},
    }
    if not any(r.cost_usd for r in rows):
        del layout["yaxis2"]
        return {"data": [tokens], "layout": layout}
    return {"data": [tokens, cost], "layout": layout}


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0].strip() for k, v in parse_qs(body).items()}


def _number(form: dict, name: str, kind: type = int):
    """The form field as a number (None when empty); a ValueError that names it otherwise."""
    value = form.get(name)
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, not {value!r}.") from None


def _message(exc: Exception) -> str:
    if isinstance(exc, ModelAtlasError):
        return f"{exc.message} {exc.hint or ''}".strip()
    return str(exc)
