"""`modelatlas usage`: what `modelatlas serve` metered, by day, model or key."""

from __future__ import annotations

from typing import Annotated

import typer

from modelatlas.cli.common import console, handle_errors, print_json


@handle_errors
def usage_command(
    key: Annotated[str | None, typer.Option("--key", help="Only this key (name or id).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this date (2026-11-01) on.")] = None,
    by: Annotated[str, typer.Option("--by", help="Group by day, model or key.")] = "day",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Requests, tokens, audio seconds (transcriptions), images (image generation) and cost
    metered by the server."""
    from modelatlas.errors import ConfigError, InvalidRequestError
    from modelatlas.store.keys import get_key
    from modelatlas.store.usage import GROUPS, parse_since, settle_dead_servers, usage_totals

    if by not in GROUPS:
        raise ConfigError(f"--by must be one of {', '.join(GROUPS)}, not {by!r}.", hint="Example: --by model")
    try:
        moment = parse_since(since)
    except InvalidRequestError as exc:
        raise ConfigError(exc.message.replace("'since'", "--since"), hint=exc.hint) from None
    key_info = get_key(key) if key else None
    settle_dead_servers()
    rows = usage_totals(by, key_id=key_info.id if key_info else None, since=moment)
    if json_out:
        print_json([_row(r, by) for r in rows])
        return
    _print(rows, by, key_info.name if key_info else None)


def _print(rows, by: str, key: str | None) -> None:
    if not rows:
        console().print("No usage recorded" + (f" for key {key}" if key else "") + ".")
        return
    from rich.table import Table

    title = "Usage" + (f" of key {key}" if key else "") + f" by {by}"
    table = Table(title=title, title_justify="left", show_footer=True)
    table.add_column(by, footer="total")
    # Requests with no final record (in flight, or their server was killed): shown only then;
    # audio seconds only where something was transcribed, images only where some were made.
    unfinished = any(r.unfinished for r in rows)
    fields = ["requests", "input_tokens", "output_tokens"] + (["unfinished"] if unfinished else [])
    fields += ["audio_seconds"] if any(r.audio_seconds for r in rows) else []
    fields += ["images"] if any(r.images for r in rows) else []
    for column in [f.replace("_", " ") for f in fields] + ["cost (USD)"]:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r.group, *[_figure(getattr(r, f)) for f in fields], f"{r.cost_usd:.6f}")
    totals = [_figure(sum(getattr(r, f) for r in rows)) for f in fields]
    cost = sum(r.cost_usd for r in rows)
    for column, value in zip(table.columns[1:], [*totals, f"{cost:.6f}"], strict=True):
        column.footer = value
    console().print(table)
    if unfinished:
        console().print(
            "unfinished: requests still running, or cut off when their server was killed "
            "(their tokens and cost are not known)."
        )


def _row(r, by: str) -> dict:
    """One group as JSON; ``audio_seconds`` only where audio was transcribed and ``images``
    only where pictures were made (as in a call's usage)."""
    row = {
        by: r.group,
        "requests": r.requests,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "total_tokens": r.total_tokens,
        "cost_usd": r.cost_usd,
        "unfinished": r.unfinished,
    }
    if r.audio_seconds:
        row["audio_seconds"] = round(r.audio_seconds, 3)
    if r.images:
        row["images"] = r.images
    return row


def _figure(value: float) -> str:
    """A count with thousands separators; seconds of audio to the tenth."""
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
