"""`modelatlas keys`: API keys for `modelatlas serve` (create, list, revoke)."""

from __future__ import annotations

from typing import Annotated

import typer

from modelatlas.cli.common import console, escape, handle_errors, print_json
from modelatlas.formats import usd

app = typer.Typer(help="API keys for `modelatlas serve`: create, list, revoke.", no_args_is_help=True)


@app.command("create")
@handle_errors
def create(
    name: Annotated[str, typer.Argument(help="A name for the key, e.g. the app that uses it.")],
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="Requests per minute at most.")] = None,
    tpm: Annotated[
        int | None, typer.Option("--tpm", min=1, help="Tokens (in + out) per minute at most.")
    ] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", min=0, help="USD the key may spend in all.")
    ] = None,
    models: Annotated[
        str | None, typer.Option("--models", help="Comma-separated model ids the key may use (default: all).")
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="When it stops working: a date (2026-12-31) or 30d, 12h.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the key as JSON.")] = False,
) -> None:
    """Create a key and print its secret once (only a salted hash is stored)."""
    from modelatlas.store.keys import create_key, parse_expiry

    allowed = [m.strip() for m in models.split(",") if m.strip()] if models else None
    key, secret = create_key(
        name, rpm=rpm, tpm=tpm, budget_usd=budget, models=allowed, expires_at=parse_expiry(expires)
    )
    if json_out:
        print_json({**_row(key), "secret": secret})
        return
    out = console()
    out.print(f"Created key [bold]{escape(key.name)}[/] ({key.id}). Its secret, shown only this once:")
    out.print(secret, soft_wrap=True, markup=False)
    out.print("Send it as 'Authorization: Bearer <secret>' (the openai SDK's api_key).")


@app.command("list")
@handle_errors
def list_command(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every key with its limits and state (never the secrets)."""
    from modelatlas.store.keys import list_keys

    keys = list_keys()
    if json_out:
        print_json([_row(k) for k in keys])
        return
    if not keys:
        console().print("No keys yet. Create one: modelatlas keys create NAME")
        return
    from rich.table import Table

    table = Table(title="API keys", title_justify="left")
    for column in ("name", "id", "status", "rpm", "tpm", "budget", "models", "expires", "created"):
        table.add_column(column, no_wrap=column in ("name", "id"), overflow="fold")
    for k in keys:
        table.add_row(
            k.name,
            k.id,
            k.status,
            _or_dash(k.rpm),
            _or_dash(k.tpm),
            usd(k.budget_usd),
            ", ".join(k.models) if k.models else "all",
            f"{k.expires_at:%Y-%m-%d}" if k.expires_at else "-",
            f"{k.created_at:%Y-%m-%d}",
        )
    console().print(table)


@app.command("revoke")
@handle_errors
def revoke(name: Annotated[str, typer.Argument(help="The key's name or id.")]) -> None:
    """Revoke a key: requests with it answer 401 within a second. Its usage stays."""
    from modelatlas.store.keys import revoke_key

    key = revoke_key(name)
    console().print(f"Revoked key {escape(key.name)} ({key.id}).")


def _row(key) -> dict:
    return {
        "name": key.name,
        "id": key.id,
        "status": key.status,
        "rpm": key.rpm,
        "tpm": key.tpm,
        "budget_usd": key.budget_usd,
        "models": key.models,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def _or_dash(value) -> str:
    return "-" if value is None else str(value)
