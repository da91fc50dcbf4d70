"""`modelatlas demo`: the main job. For now: one prompt to both local text models side by side."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from modelatlas.cli.common import console, handle_errors

DEMO_MODELS = ["local/smollm2-135m-instruct", "local/gemma-3-270m"]
DEMO_PROMPT = "Explain in two sentences why the sky is blue."


@handle_errors
def demo(
    prompt: Annotated[str, typer.Option(help="The prompt sent to both models.")] = DEMO_PROMPT,
    max_tokens: Annotated[int, typer.Option(min=1)] = 96,
) -> None:
    """Send one prompt to the two bundled text models and stream both answers side by side.

    SmolLM2-135M-Instruct is tuned to follow instructions; Gemma 3 270M is a base model that
    only continues text: the contrast between a foundation model and a tuned one.
    """
    from modelatlas.backends import load_model

    models = [load_model(m, log_calls=True) for m in DEMO_MODELS]
    out = console()
    out.print(f"[bold]Prompt:[/] {prompt}\n")
    with out.status("Loading the local models…"):
        asyncio.run(_load(models))
    results = asyncio.run(_race(models, prompt, max_tokens, out))
    _table(models, results, out)


async def _load(models) -> None:
    await asyncio.gather(*(m.load() for m in models))


async def _race(models, prompt: str, max_tokens: int, out) -> list:
    from rich.live import Live

    from modelatlas.playground import side_by_side

    texts = [""] * len(models)
    finals: list = [None] * len(models)
    with Live(_panels(models, texts), console=out, refresh_per_second=12) as live:
        async for i, item in side_by_side(models, prompt, max_tokens=max_tokens):
            if isinstance(item, BaseException):
                texts[i] += f"\n[error: {item}]"
                finals[i] = item
            elif item.text:
                texts[i] += item.text
            else:
                finals[i] = item
            live.update(_panels(models, texts))
    return finals


def _panels(models, texts):
    from rich.columns import Columns
    from rich.panel import Panel
    from rich.text import Text

    width = max(30, (console().width - 4) // len(models))
    return Columns(
        [Panel(Text(t or "…"), title=f"{m.id} ({m.record.mode})", width=width) for m, t in zip(models, texts)]
    )


def _table(models, finals, out) -> None:
    from rich.table import Table

    table = Table(title="Side by side")
    for column in ("model", "tokens in/out", "first token", "tokens/s", "total", "cost"):
        table.add_column(column)
    for m, f in zip(models, finals):
        if f is None or isinstance(f, BaseException):
            table.add_row(m.id, "failed", "", "", "", "")
            continue
        t = f.timing
        table.add_row(
            m.id,
            f"{f.usage.input_tokens}/{f.usage.output_tokens}",
            f"{t.ttft_s:.2f}s" if t.ttft_s is not None else "?",
            f"{t.tokens_per_s:.0f}" if t.tokens_per_s else "?",
            f"{t.latency_s:.2f}s",
            f"${f.usage.cost_usd:.4f}",
        )
    out.print(table)
