"""`modelatlas choose`: a use case in, a decision out."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from modelatlas.cli.common import console, escape, handle_errors, print_json

if TYPE_CHECKING:
    from modelatlas.strategies.choose.results import Decision

Dataset = Annotated[str, typer.Argument(help="Your test set: JSONL or CSV, as `modelatlas eval` reads it.")]
Models = Annotated[
    list[str] | None, typer.Option("--model", "-m", help="Candidates to test (skip the search).")
]


@handle_errors
def choose_command(
    dataset: Dataset,
    task: Annotated[str | None, typer.Option(help="What the model must do (catalog task).")] = "chat",
    modality: Annotated[str | None, typer.Option(help="An input or output modality it needs.")] = None,
    open_weights: Annotated[
        bool | None, typer.Option("--open/--any-licence", help="Open weights only.")
    ] = None,
    max_price: Annotated[float | None, typer.Option(min=0, help="USD per 1M input tokens, at most.")] = None,
    min_context: Annotated[str | None, typer.Option(help="Context window at least: 8192, 32k, 1M.")] = None,
    fits: Annotated[bool, typer.Option(help="Only models that fit in this machine's memory.")] = False,
    runnable: Annotated[bool, typer.Option(help="Only models that run here now.")] = False,
    max_latency_ms: Annotated[
        float | None, typer.Option(min=1, help="p95 latency under load, at most.")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(min=0, help="The most hosted calls may cost in all.")
    ] = None,
    candidates: Annotated[int, typer.Option(min=1, max=20, help="How many candidates to test.")] = 5,
    model: Models = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Concurrent requests in the load test.")
    ] = 4,
    duration: Annotated[str, typer.Option(help="Load test length per candidate: 20s, 1m.")] = "20s",
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens per answer.")] = 128,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="The metric that decides (default: picked from the data).")
    ] = None,
    judge: Annotated[str | None, typer.Option(help="The model that judges (judge_* metrics).")] = None,
    report: Annotated[str | None, typer.Option(help="Write the decision as standalone HTML here.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Shortlist candidates from the catalog, test them on your data and under load, and pick."""
    from modelatlas.catalog.format import parse_tokens
    from modelatlas.loadtest.runner import parse_duration
    from modelatlas.strategies.choose import Constraints, choose

    if report:
        from modelatlas.evals.report_files import check_writable

        check_writable(report)
    constraints = Constraints(
        task=None if model else task, modality=modality, open_weights=open_weights, max_price=max_price,
        min_context=parse_tokens(min_context) if min_context else None, fits=fits, runnable=runnable,
        max_latency_ms=max_latency_ms, budget_usd=budget_usd, candidates=candidates, models=model or [],
    )  # fmt: skip
    err = console(stderr=True)
    decision = asyncio.run(
        choose(
            dataset, constraints, concurrency=concurrency, duration_s=parse_duration(duration),
            max_tokens=max_tokens, limit=limit, metric=metric, judge=judge,
            say=lambda text: err.print(escape(text)),
        )
    )  # fmt: skip
    _finish(decision, report, json_out)


def _finish(decision: Decision, report: str | None, json_out: bool) -> None:
    """Save the decision, write its HTML report where asked, and print it."""
    from modelatlas.strategies.choose.saved import save

    where = save(decision)
    if report:
        from modelatlas.evals.report_files import atomic_write
        from modelatlas.strategies.choose.report_html import decision_html

        atomic_write(report, decision_html(decision))
    if json_out:
        print_json(decision)
        return
    show(decision)
    console().print(f"Saved as {where}" + (f"; report: {report}" if report else ""))


def show(d: Decision) -> None:
    from rich import box
    from rich.table import Table

    from modelatlas.strategies.choose.recommend import money

    out = console()
    table = Table(
        title=f"{d.metric} on {d.dataset}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
        collapse_padding=True,
    )  # fmt: skip
    table.add_column("model", no_wrap=True)
    for name in (d.metric, "95% CI", "n", "$/1k req", "p95 ms"):
        table.add_column(name, justify="right", no_wrap=True)
    for p in d.points:
        style = "bold green" if p.model == d.pick else ("dim" if not p.eligible else None)
        ci = "-" if p.ci_low is None or p.ci_high is None else f"{p.ci_low:.3f}-{p.ci_high:.3f}"
        score = "-" if p.quality is None else f"{p.quality:.3f}"
        name = p.model + (" *" if p.on_front else "")
        p95 = "-" if p.p95_ms is None else f"{p.p95_ms:,.0f}"
        table.add_row(name, score, ci, str(p.n), money(p.cost_per_1k), p95, style=style)
    out.print(table)
    out.print(f"* on the Pareto front (quality, cost, p95 latency at {d.concurrency} concurrent requests).")
    out.print(escape(d.recommendation))
    if d.metric_reason:
        out.print(escape(f"Metric {d.metric}: {d.metric_reason}."))
