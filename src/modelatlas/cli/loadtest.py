"""`modelatlas loadtest`: a model under concurrent load from your own prompts."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from modelatlas.cli.common import console, escape, handle_errors, print_json

if TYPE_CHECKING:
    from modelatlas.loadtest.results import LoadReport, Percentiles

Model = Annotated[str, typer.Argument(help="A model id (local ones are served for the test).")]
DatasetOpt = Annotated[
    str, typer.Option("--dataset", "-d", help="JSONL or CSV of prompts (the eval formats).")
]
Levels = Annotated[
    str, typer.Option("--concurrency", "-c", help="Requests kept in flight, per level: 1,4,16.")
]
Duration = Annotated[str, typer.Option(help="How long each level runs: 60s, 2m.")]
MaxTokens = Annotated[int, typer.Option(min=1, help="Most tokens per answer.")]
BaseUrl = Annotated[
    str | None,
    typer.Option(help="Test an OpenAI-compatible server at this URL instead (vLLM, llama-server...)."),
]
KeyEnv = Annotated[str | None, typer.Option(help="With --base-url: the variable holding its API key.")]
MaxRequests = Annotated[
    int | None, typer.Option(min=1, help="At most N requests per level (hosted models: 20 unless set).")
]
Budget = Annotated[float | None, typer.Option(min=0, help="USD the whole test may spend on hosted calls.")]
Limit = Annotated[int | None, typer.Option(min=1, help="Only the first N prompts.")]
Out = Annotated[str | None, typer.Option(help="Write the report as JSON to this path.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


@handle_errors
def loadtest_command(
    model: Model,
    dataset: DatasetOpt,
    concurrency: Levels = "1,4,16",
    duration: Duration = "60s",
    max_tokens: MaxTokens = 128,
    base_url: BaseUrl = None,
    api_key_env: KeyEnv = None,
    max_requests: MaxRequests = None,
    budget_usd: Budget = None,
    limit: Limit = None,
    out: Out = None,
    json_out: JsonOut = False,
) -> None:
    """Time to first token, inter-token and end-to-end latency (p50/p95/p99), tokens/s per
    stream and in aggregate, and error and 429 rates, at each concurrency level."""
    from modelatlas.loadtest.plan import run_loadtest
    from modelatlas.loadtest.runner import parse_duration, parse_levels

    levels, seconds = parse_levels(concurrency), parse_duration(duration)
    if out:
        from modelatlas.evals.report_files import check_writable

        check_writable(out)  # before minutes of load, not after
    with _progress(len(levels), seconds, quiet=json_out) as progress:
        report, _ = asyncio.run(
            run_loadtest(
                model, dataset, levels, seconds, max_tokens,
                base_url=base_url, api_key_env=api_key_env, max_requests=max_requests,
                budget_usd=budget_usd, limit=limit, progress=progress,
            )
        )  # fmt: skip
    if out:
        from modelatlas.evals.report_files import atomic_write

        atomic_write(out, report.model_dump_json(indent=2))
    if json_out:
        print_json(report)
    else:
        show(report)


def _progress(levels: int, seconds: float, quiet: bool):
    """A bar per level that counts finished requests (rich, on standard error)."""
    import contextlib

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if quiet:
        return contextlib.nullcontext(None)
    bar = Progress(
        TextColumn("concurrency {task.fields[level]:>3}"),
        BarColumn(),
        TextColumn("{task.completed} requests, {task.fields[errors]} errors"),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    )
    tasks: dict[int, int] = {}

    def on_done(level: int, sample) -> None:
        if level not in tasks:
            tasks[level] = bar.add_task("", total=None, level=level, errors=0)
        task = tasks[level]
        errors = bar.tasks[task].fields["errors"] + (0 if sample.ok else 1)
        bar.update(task, advance=1, errors=errors)

    @contextlib.contextmanager
    def running():
        with bar:
            yield on_done

    return running()


def _ms(p: Percentiles, *which: str) -> str:
    """``p``'s named percentiles, slash-separated: "131/166"."""
    values = [getattr(p, name) for name in which]
    return "/".join("-" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.1f}") for v in values)


def show(report: LoadReport) -> None:
    from rich import box
    from rich.table import Table

    out = console()
    title = f"{report.model}: {report.prompts} prompts, {report.max_tokens} tokens at most"
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    heads = ("\nstreams", "\nreqs", "\nerrors", "TTFT ms\np50/p95", "ITL ms\np50", "e2e ms\np50/p95/p99",
             "tok/s\nstream", "tok/s\ntotal")  # fmt: skip
    for name in heads:
        table.add_column(name, justify="right", no_wrap=True)
    for lv in report.levels:
        table.add_row(
            str(lv.concurrency), str(lv.requests), f"{lv.error_rate:.0%}",
            _ms(lv.ttft_ms, "p50", "p95"), _ms(lv.itl_ms, "p50"), _ms(lv.e2e_ms, "p50", "p95", "p99"),
            _ms(lv.stream_tokens_per_s, "p50"), f"{lv.tokens_per_s:.1f}",
        )  # fmt: skip
    out.print(table)
    out.print(
        "tok/s stream: the median request's; total: every stream together. "
        f"Dataset {report.dataset}, sent to {report.target}.",
        soft_wrap=False,
    )
    for lv in report.levels:
        if lv.rate_limited:
            out.print(
                f"[yellow]{lv.concurrency} streams:[/] {lv.rate_limited} requests answered 429 (rate limit)."
            )
    if any(lv.no_usage for lv in report.levels):
        out.print("The server reported no usage: output tokens are counted as streamed chunks, input as 0.")
    for lv in report.levels:
        for message in lv.error_examples:
            out.print(f"[red]concurrency {lv.concurrency}:[/] {escape(message)}")
    if report.note:
        out.print(escape(report.note))
