"""What every command shares: error reporting with exit codes, consoles, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import typer


def handle_errors(command: Callable) -> Callable:
    """Turn a modelatlas error into its message, its hint and its exit code (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from modelatlas.errors import ModelAtlasError

        try:
            return command(*args, **kwargs)
        except ModelAtlasError as exc:
            report(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(130) from None

    return wrapper


def report(exc) -> None:
    err = console(stderr=True)
    err.print(f"[bold red]Error:[/] {escape(exc.message)}", soft_wrap=True)
    if exc.hint:
        err.print(escape(exc.hint), soft_wrap=True)


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on standard output; a result model as its ``model_dump``."""
    if hasattr(data, "model_dump"):  # a pydantic result (RunSummary, Estimate, ImproveReport...)
        data = data.model_dump(mode="json")
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
