"""`modelatlas eval`: test models on your own data."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from modelatlas.cli.common import console, handle_errors, print_json
from modelatlas.formats import usd

if TYPE_CHECKING:
    from modelatlas.evals.results import RunResult, RunSummary

Dataset = Annotated[
    str, typer.Argument(help="JSONL, CSV, a Hugging Face datasets folder, or a built-in name: humaneval.")
]
ModelIds = Annotated[list[str] | None, typer.Option("--model", "-m", help="A model id; repeat for more.")]
Strategies = Annotated[
    list[str] | None,
    typer.Option(help="zero-shot, one-shot, few-shot:K[:similar] or rag:KB[:K]; repeatable."),
]
Metrics = Annotated[list[str] | None, typer.Option(help="A metric name; repeatable (default: by dataset).")]
Judge = Annotated[str | None, typer.Option(help="The model that judges (judge_* metrics).")]
Limit = Annotated[int | None, typer.Option(min=1, help="Only the first N items.")]
Concurrency = Annotated[int, typer.Option(min=1, help="Calls in flight per model.")]
RunName = Annotated[str | None, typer.Option(help="A name to find the run by.")]
Resume = Annotated[str | None, typer.Option(help="Finish the run RUN_ID; redo nothing done.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Estimate tokens and cost, then stop.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
Report = Annotated[str | None, typer.Option(help="Write a standalone HTML report to this path.")]
Samples = Annotated[str | None, typer.Option(help="Write the per-item results as JSONL to this path.")]
Examples = Annotated[str | None, typer.Option(help="Few-shot examples file (default: train.jsonl beside).")]
System = Annotated[str | None, typer.Option(help="System prompt, or @FILE to read it.")]
Template = Annotated[
    str | None, typer.Option(help="Jinja2 template file for each question ({{ input }}, fields).")
]
MaxTokens = Annotated[int, typer.Option(min=1, help="Most tokens per answer.")]
Temperature = Annotated[float, typer.Option(min=0.0, max=2.0)]
PricePerHour = Annotated[float | None, typer.Option(min=0, help="USD per hour of compute for local models.")]
Pattern = Annotated[str | None, typer.Option(help="Pattern for the regex metric.")]
Normalize = Annotated[
    str | None,
    typer.Option(help="How wer and cer normalise both texts: whisper (default), basic or none."),
]
K = Annotated[
    int | None,
    typer.Option(min=1, help="k for recall_at_k, mrr and ndcg (default 5), and pass_at_k (default 1)."),
]
SamplesPerItem = Annotated[
    int, typer.Option(min=1, help="Answer each item N times (pass_at_k's n; sample i has seed i).")
]
ClipModel = Annotated[str | None, typer.Option(help="A local CLIP folder for clip_score (never downloaded).")]
Size = Annotated[str | None, typer.Option(help="Image models: WIDTHxHEIGHT of each picture, e.g. 512x512.")]
Steps = Annotated[int | None, typer.Option(help="Image models: denoising steps (local pipelines).")]
ImageSeed = Annotated[int | None, typer.Option(help="Image models: the seed (picture i has seed + i; 0).")]
ImagesPerItem = Annotated[int | None, typer.Option(help="Image models: pictures per prompt (1 to 10; 1).")]


def _field(what: str):
    return Annotated[str, typer.Option(help=f"The dataset field holding {what}.")]


@handle_errors
def eval_command(
    dataset: Dataset,
    model: ModelIds = None,
    strategy: Strategies = None,
    metric: Metrics = None,
    judge: Judge = None,
    limit: Limit = None,
    concurrency: Concurrency = 4,
    run_name: RunName = None,
    resume: Resume = None,
    dry_run: DryRun = False,
    json_out: JsonOut = False,
    report: Report = None,
    samples: Samples = None,
    examples: Examples = None,
    system: System = None,
    template: Template = None,
    max_tokens: MaxTokens = 128,
    temperature: Temperature = 0.0,
    price_per_hour: PricePerHour = None,
    pattern: Pattern = None,
    k: K = None,
    normalize: Normalize = None,
    samples_per_item: SamplesPerItem = 1,
    clip_model: ClipModel = None,
    size: Size = None,
    steps: Steps = None,
    image_seed: ImageSeed = None,
    images_per_item: ImagesPerItem = None,
    input_field: _field("the input") = "input",
    reference_field: _field("the reference(s)") = "reference",
    id_field: _field("the item id") = "id",
    choices_field: _field("multiple-choice options") = "choices",
    answer_field: _field("the right choice") = "answer",
    audio_field: _field("a sound file's path (speech)") = "audio",
    image_field: _field("an image file's path, or a list of them") = "image",
) -> None:
    """Run DATASET through one or more models and strategies, score it, and compare them."""
    from modelatlas.evals.plan import given_metric_options

    fields = _fields(
        input_field, reference_field, id_field, choices_field, answer_field, audio_field, image_field
    )
    asked = {
        **_what_runs(model, strategy, metric, judge),
        **_prompting(system, template, max_tokens, temperature),
        "concurrency": concurrency,
        "price_per_hour": price_per_hour,
        "metric_options": given_metric_options(pattern, k, normalize, clip_model),
        "limit": limit,
        "samples_per_item": samples_per_item,
        "image_params": _given({"size": size, "steps": steps, "seed": image_seed, "n": images_per_item}),
    }
    _execute(dataset, fields, asked, examples, run_name, resume, dry_run, json_out, report, samples)


def _fields(input: str, reference: str, id: str, choices: str, answer: str, audio: str, image: str):
    """The dataset fields named on the command line."""
    from modelatlas.evals.datasets import Fields

    return Fields(
        input=input, reference=reference, id=id, choices=choices, answer=answer, audio=audio, image=image
    )


def _what_runs(
    model: list[str] | None, strategy: list[str] | None, metric: list[str] | None, judge: str | None
) -> dict:
    """The models, strategies, metrics and judge asked for (the arms follow from them)."""
    return {"models": model or [], "strategies": strategy, "metrics": metric, "judge": judge, "arms": None}


def _prompting(system: str | None, template: str | None, max_tokens: int, temperature: float) -> dict:
    """The prompt and generation settings asked for (a system prompt may come @FILE)."""
    return {
        "system": _text(system),
        "template_path": template,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }


def _execute(
    dataset: str,
    fields,
    asked: dict,
    examples: str | None,
    run_name: str | None,
    resume: str | None,
    dry_run: bool,
    json_out: bool,
    report: str | None,
    samples: str | None,
) -> None:
    """Plan the run (resumed: with its saved settings), then estimate it or run it and write its outputs."""
    if resume:
        asked.update(_resumed(resume, asked["concurrency"], asked["limit"]))
    plan = _plan(dataset, fields, asked, examples, run_name)
    if dry_run:
        _print_estimate(plan, json_out)
        return
    _check_writable({"--report": report, "--samples": samples})
    result = _run(plan, resume, quiet=json_out)
    _outputs(result.run_id, result.summary, plan, json_out, report, samples)
    _fail_if_failed(result.run_id, result.summary)


def _plan(dataset: str, fields, asked: dict, examples: str | None, run_name: str | None):
    """The plan of the command's settings, with a warning on stderr where sampling cannot vary."""
    from modelatlas.evals.plan import make_plan

    plan = make_plan(dataset, asked.pop("models"), fields=fields, pool_path=examples, name=run_name, **asked)
    if warning := plan.sampling_warning():
        console(stderr=True).print(f"[yellow]Warning:[/] {warning}", soft_wrap=True)
    return plan


def _resumed(run_id: str, concurrency: int, limit: int | None) -> dict:
    """The settings a run started with: a resumed run keeps them, whatever the command line says.

    Refused at once when another live process still runs it."""
    from modelatlas.evals.metrics import taken_options
    from modelatlas.evals.owner import check_free
    from modelatlas.evals.records import get_run

    run = get_run(run_id)
    check_free(run_id)
    saved = run.params
    return {
        # the limit decides which items (and so the dataset hash); runs from before it was
        # stored fall back to the command line's
        "limit": saved.get("limit", limit),
        "models": run.models,
        "strategies": run.strategies,
        "metrics": run.metrics,
        "judge": run.judge,
        "arms": saved.get("arms"),
        "system": saved.get("system"),
        "template_path": saved.get("template"),
        "max_tokens": saved["max_tokens"],
        "temperature": saved["temperature"],
        "concurrency": saved.get("concurrency", concurrency),
        "price_per_hour": saved.get("price_per_hour"),
        # runs stored before options were typed carry k=5 whatever the metrics: keep what they take
        "metric_options": taken_options(run.metrics, saved.get("metric_options") or {}),
        "samples_per_item": saved.get("samples_per_item", 1),
        "image_params": saved.get("image") or {},
    }


def _given(options: dict) -> dict:
    """The image settings given on the command line (the others keep ImageParams' defaults)."""
    return {key: value for key, value in options.items() if value is not None}


def _check_writable(paths: dict[str, str | None]) -> None:
    """Refuse, before the run starts, an output path (by its option) that cannot be written."""
    for option, path in paths.items():
        if path:
            _check_one(path, option)


def _check_one(path: str, option: str) -> None:
    from pathlib import Path

    from modelatlas.errors import ConfigError

    target = Path(path).expanduser()
    if target.is_dir():
        raise ConfigError(f"{option} {path} is a folder.", hint=f"Give a file path, e.g. {path}/out.jsonl.")
    if not target.parent.is_dir():
        raise ConfigError(
            f"{option} {path}: the folder {target.parent} does not exist.",
            hint=f"Create it first (mkdir -p {target.parent}) or pick another path.",
        )
    existed = target.exists()
    try:  # the real test: permissions, read-only mounts and root all answer the same way here
        with open(target, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{option} {path} cannot be written: {exc.strerror}.", hint="Pick a path you can write to."
        ) from None
    if not existed:
        target.unlink()


def _fail_if_failed(run_id: str, summary: RunSummary) -> None:
    """Exit non-zero when every answer was an error: such a run is no result (and ranks nowhere)."""
    if summary.status != "failed":
        return
    from modelatlas.errors import ModelAtlasError
    from modelatlas.evals.records import load_items

    first = next((r for r in load_items(run_id) if r.output.error), None)
    cause = f" The first error ({first.model}): {first.output.error}" if first else ""
    raise ModelAtlasError(
        f"Every answer in run {run_id} failed, so the run is marked failed and ranks on no "
        f"leaderboard.{cause}",
        hint='Check the model on one prompt: modelatlas run MODEL "Hello".',
    )


def _text(value: str | None) -> str | None:
    if value and value.startswith("@"):
        from pathlib import Path

        return Path(value[1:]).read_text(encoding="utf-8").strip()
    return value


def _run(plan, resume: str | None, quiet: bool) -> RunResult:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from modelatlas import evals
    from modelatlas.evals import runner

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console(stderr=True), disable=quiet, transient=False) as bar:
        run_id = resume
        total = len(runner.pending(plan, run_id)) if run_id else len(plan.arms) * plan.dataset.n
        task = bar.add_task(
            f"Evaluating {plan.dataset.name}", total=total + runner.pair_jobs(plan, run_id or "")
        )

        def advance(_label: str) -> None:
            bar.advance(task)

        try:
            if resume:
                return asyncio.run(evals.resume(plan, resume, advance))
            return asyncio.run(evals.evaluate(plan, advance))
        except KeyboardInterrupt:
            console(stderr=True).print(
                "Interrupted. Finish it later with --resume (see `modelatlas runs list`)."
            )
            raise


def _outputs(
    run_id: str, summary: RunSummary, plan, json_out: bool, report: str | None, samples: str | None
) -> None:
    from modelatlas.evals import records

    if report or samples:
        results = records.load_items(run_id)
        if report:
            from modelatlas.evals.report_html import write_html

            write_html(summary, results, plan.dataset.items, report)
        if samples:
            from modelatlas.evals.report_files import write_jsonl

            write_jsonl(results, samples)
    if json_out:
        print_json(summary)
        return
    from modelatlas.evals.report_terminal import print_summary

    print_summary(summary, console())
    out = console()
    out.print(f"Run [bold]{run_id}[/]: `modelatlas runs show {run_id}`")
    if report:
        out.print(f"Report: {report}")


def _print_estimate(plan, json_out: bool) -> None:
    from modelatlas.evals.estimate import estimate

    found = asyncio.run(estimate(plan))
    if json_out:
        print_json(found)
        return
    from rich.table import Table

    table = Table(title=f"Dry run: {plan.dataset.name}, {plan.dataset.n} items (nothing was sent)")
    for column in ("model", "strategy", "calls", "input", "output tokens (expected / at most)", "USD"):
        table.add_column(column)
    for r in found.arms:
        cost = f"{usd(r.cost_usd_expected)} – {usd(r.cost_usd_max)}" if r.priced else "unknown price"
        if r.audio_seconds is not None:  # a speech arm: billed by the audio's length, no tokens
            sent, made = f"{r.audio_seconds:,.1f} s of audio", "-"
        elif r.images is not None:  # an image arm: billed by the picture
            sent, made = "-", f"{r.images:,} images"
        else:
            sent, made = f"{r.input_tokens:,}", f"{r.output_tokens_expected:,} / {r.output_tokens_max:,}"
        table.add_row(r.model, r.strategy, str(r.calls), sent, made, cost)
    console().print(table)
