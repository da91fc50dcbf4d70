"""`modelatlas improve`: few-shot, RAG and fine-tuning against zero-shot, on one test set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from modelatlas.cli.common import console, escape, handle_errors, print_json
from modelatlas.formats import usd

if TYPE_CHECKING:
    from modelatlas.evals.results import RunSummary
    from modelatlas.strategies.results import ImproveReport

Samples = Annotated[
    str | None, typer.Option(help="Write the per-item results, with the exact prompts sent, as JSONL.")
]
Train = Annotated[str | None, typer.Option(help="Training data: fine-tuning, and few-shot examples.")]
Finetune = Annotated[
    bool,
    typer.Option(
        "--finetune/--no-finetune", help="Fine-tune on --train (off: it is only the few-shot pool)."
    ),
]


@handle_errors
def improve_command(
    model: Annotated[str, typer.Option("--model", "-m", help="The model to improve.")],
    dataset: Annotated[str, typer.Option(help="The test set (JSONL, CSV or datasets folder).")],
    docs: Annotated[str | None, typer.Option(help="A folder of documents for RAG.")] = None,
    train: Train = None,
    finetune: Finetune = True,
    few_shot: Annotated[int, typer.Option(min=0, help="Examples for the few-shot approach (0: skip).")] = 3,
    metric: Annotated[list[str] | None, typer.Option(help="Metrics; the first decides.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N test items.")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop fine-tuning after N steps.")] = None,
    lora_r: Annotated[int, typer.Option(min=1)] = 8,
    lr: Annotated[float, typer.Option(min=0.0, help="Fine-tuning learning rate.")] = 2e-4,
    max_tokens: Annotated[int, typer.Option(min=1)] = 96,
    system: Annotated[str | None, typer.Option(help="System prompt, or @FILE.")] = None,
    price_per_hour: Annotated[
        float | None, typer.Option(min=0, help="USD per compute hour for local models.")
    ] = None,
    report: Annotated[str | None, typer.Option(help="Write the HTML report here.")] = None,
    samples: Samples = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Which is worth it for this use case: prompting, RAG or fine-tuning? Measured, side by side."""
    from modelatlas.cli.eval import _run, _text
    from modelatlas.evals.plan import make_plan
    from modelatlas.strategies import improve as improving
    from modelatlas.strategies.improve_report import build_report

    args = {"epochs": epochs, "lora_r": lora_r, "lr": lr, "max_steps": max_steps}
    improving.check_few_shot(dataset, train, few_shot, limit)  # before minutes of fine-tuning
    chosen = _deciding_metric(dataset, limit) if not metric else None
    metric = [chosen[0]] if chosen else metric
    with console(stderr=True).status("Preparing: indexing documents and fine-tuning where asked…"):
        setup = improving.prepare(model, docs=docs, train=train if finetune else None, finetune_args=args)
    if chosen:
        setup.notes.append(f"Deciding metric {chosen[0]}, picked from the data: {chosen[1]}.")
    tuned = setup.finetune.model_id if setup.finetune else None
    setup.approaches = improving.approaches(model, few_shot=few_shot, has_pool=True, kb=setup.kb, tuned=tuned)
    plan = make_plan(
        dataset,
        [],
        arms=[(a.model, a.strategy) for a in setup.approaches],
        metrics=metric,
        limit=limit,
        pool_path=train,
        system=_text(system),
        max_tokens=max_tokens,
        price_per_hour=price_per_hour,
        name=f"improve: {model}",
    )
    run = _run(plan, None, quiet=json_out)
    _finish(build_report(run.summary, setup, price_per_hour), run, plan, report, samples, json_out)


def _finish(
    result: ImproveReport, run, plan, report: str | None, samples: str | None, json_out: bool
) -> None:
    """Keep the report for the studio, write the files asked for, and print it."""
    from modelatlas.cli.eval import _outputs

    _save(result)
    if report:
        _write_html(result, run.summary, run.run_id, plan, report)
    if samples:
        _write_samples(run.run_id, samples)
    if json_out:
        print_json(result)
        return
    _outputs(run.run_id, run.summary, plan, json_out=False, report=None, samples=None)
    _table(result)


def _deciding_metric(dataset: str, limit: int | None) -> tuple[str, str]:
    """The metric picked from the data when --metric is not given, said on stderr with why."""
    from modelatlas.evals.datasets import load_dataset
    from modelatlas.evals.metric_choice import primary_metric

    name, why = primary_metric(load_dataset(dataset, limit=limit))
    console(stderr=True).print(escape(f"Deciding metric: {name} ({why}). Give --metric to choose another."))
    return name, why


def _write_html(result: ImproveReport, summary: RunSummary, run_id: str, plan, path: str) -> None:
    """The evaluation's HTML report, opened by the improve section."""
    from modelatlas.evals import records
    from modelatlas.evals.report_html import write_html
    from modelatlas.strategies.improve_html import improve_section

    items = records.load_items(run_id)
    write_html(summary, items, plan.dataset.items, path, intro_html=improve_section(result))


def _write_samples(run_id: str, path: str) -> None:
    """Per item: the answer, the scores and the prompt as sent (a few-shot arm's examples show)."""
    from modelatlas.evals import records
    from modelatlas.evals.report_files import write_jsonl

    write_jsonl(records.load_items(run_id), path)


def _save(result: ImproveReport) -> None:
    """Keep the report where the studio's Improve page finds it."""
    import json

    from modelatlas.config import settings

    folder = settings().home / "improve"
    settings().make_dirs(folder)  # a home made here is made private
    text = json.dumps(result.model_dump(mode="json"), indent=2)
    (folder / f"{result.run_id}.json").write_text(text)


def _table(result: ImproveReport) -> None:
    from rich.table import Table

    metric = result.metric
    table = Table(
        title=f"Improve: each approach against zero-shot on {metric}",
        title_justify="left",
        caption="Δ: paired difference with its 95% CI; n.s.: no significant difference",
        caption_justify="left",
    )
    for column in (
        "approach",
        metric,
        "Δ vs zero-shot",
        "p",
        "",
        "$/1k q",
        "p50 s",
        "p95 s",
        "prompt tok",
        "training",
    ):
        table.add_column(column, overflow="fold")
    for r in result.approaches:
        if r.missing:
            continue
        stats, vs = r.metrics[metric], r.vs_baseline
        if vs is None:
            delta, p, verdict = "baseline", "", ""
        else:
            delta = f"{vs.diff:+.3f}\n{vs.ci_low:+.3f}…{vs.ci_high:+.3f}"
            p = f"{vs.p_value:.2g}"
            verdict = {"better": "[green]better[/]", "worse": "[red]worse[/]"}.get(vs.verdict, "n.s.")
        if r.invalid:
            verdict = "[red]no examples[/]"
        train = f"{r.training_seconds / 60:.1f} min" if r.training_seconds else ""
        tokens = f"{r.context_tokens:.0f}" if r.context_tokens else "?"
        table.add_row(
            r.approach,
            f"{stats.mean:.3f}",
            delta,
            p,
            verdict,
            usd(r.cost_per_1k),
            _s(r.latency_p50),
            _s(r.latency_p95),
            tokens,
            train,
        )
    out = console()
    out.print(table)
    for note in result.notes:
        out.print(f"[dim]{note}[/]")
    out.print(f"\n[bold]Recommendation:[/] {result.recommendation}")


def _s(value) -> str:
    return "?" if value is None else f"{value:.2f}"
