"""`modelatlas finetune`: LoRA fine-tuning of a local model on your examples."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelatlas.cli.common import console, escape, handle_errors, print_json

if TYPE_CHECKING:
    from modelatlas.strategies.finetune.outcome import DataCheck


@handle_errors
def finetune_command(
    base: Annotated[str, typer.Option("--base", help="The local model to fine-tune.")],
    train: Annotated[
        str, typer.Option("--train", help='JSONL: {"messages": [...]} or {"prompt", "completion"} rows.')
    ],
    val: Annotated[str | None, typer.Option("--val", help="Validation JSONL, same format.")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training data.")] = 1,
    lr: Annotated[float, typer.Option(min=0.0, help="AdamW learning rate.")] = 2e-4,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1, help="LoRA rank (alpha is twice it).")] = 8,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4, help="Examples per step.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed for the LoRA weights and the data order.")] = 0,
    name: Annotated[
        str | None, typer.Option(help="Name of the new model (default: data hash + rank).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object at the end.")] = False,
) -> None:
    """Fine-tune BASE with LoRA on TRAIN and register it as ft/<base-name>/<name>."""
    from modelatlas.strategies.finetune import (
        check_data,
        clean_leftovers,
        finetune,
        make_params,
        outcome,
        prepare,
    )

    params = make_params(epochs, lr, lora_r, max_steps, batch_size, seed)
    out = console()
    interrupted = clean_leftovers()
    if not json_out:
        _print_interrupted(interrupted)
    if json_out:
        ready = _quietly(prepare, base, train, val)
    else:
        with console(stderr=True).status(f"Loading {base} and checking the data..."):
            ready = _quietly(prepare, base, train, val)
    check = check_data(ready, params)
    if not json_out:
        _print_summary(out, check)
    kwargs = dict(val_path=val, name=name, prepared=ready, **params)
    if json_out:
        result = finetune(base, train, **kwargs)
    else:
        result = _with_progress_bar(lambda progress: finetune(base, train, progress=progress, **kwargs))
    if json_out:
        print_json(outcome(check, result, interrupted))
    else:
        _print_result(out, result)


def _quietly(prepare: Any, *args: Any) -> Any:
    """Prepare without logging duplicated examples: the summary lists them."""
    logger = logging.getLogger("modelatlas.strategies.finetune.data")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return prepare(*args)
    finally:
        logger.setLevel(level)


def _print_interrupted(found: list) -> None:
    """Say which earlier fine-tunes died without finishing, and what was cleaned up."""
    err = console(stderr=True)
    for f in found:
        started = f.created_at.strftime("%Y-%m-%d %H:%M UTC") if f.created_at else "at an unknown time"
        who = f"its process {f.pid} is gone" if f.pid else "its process is gone"
        err.print(
            f"[yellow]Interrupted:[/] the fine-tune {escape(f.model_id)} ({f.finetune_id[:8]}, started "
            f"{started}, {f.steps} steps) never finished: {who}; it is marked interrupted.",
            soft_wrap=True,
        )
        for path in f.removed:
            err.print(f"  removed its partial adapter {escape(path)}", soft_wrap=True)


def _print_summary(out: Any, s: DataCheck) -> None:
    say = functools.partial(out.print, soft_wrap=True)  # whole lines, whatever the width
    dupes = s.duplicates
    repeated = ", ".join(f"line {d.line} repeats line {d.repeats}" for d in dupes)
    window = f"{s.context_length:,}" if s.context_length else "unknown"
    say(f"[bold]Training data[/] {escape(s.train)} (hash {s.data_hash[:12]})")
    say(f"  examples      {s.examples}" + (f" (+{s.val_examples} validation)" if s.val_examples else ""))
    say(f"  tokens        {s.tokens:,} (longest {s.longest:,}; context window {window})")
    say("  too long      none")
    say(f"  duplicates    {len(dupes)}" + (f" [yellow]({repeated})[/]" if dupes else ""))
    say(f"  estimated     about {_duration(s.estimated_seconds)} on this CPU, after loading the model")


def _with_progress_bar(run: Any) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("val {task.fields[val]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console(stderr=True)) as bar:
        task = bar.add_task("Fine-tuning", total=None, loss="-", val="-")

        def progress(step: Any) -> None:
            fields = {"loss": f"{step.loss:.3f}"}
            if step.val_loss is not None:
                fields["val"] = f"{step.val_loss:.3f}"
            bar.update(task, total=step.total, completed=step.step, **fields)

        return run(progress)


def _print_result(out: Any, result: Any) -> None:
    say = functools.partial(out.print, soft_wrap=True)  # whole lines, whatever the width
    steps = result.steps
    val = f", validation {result.val_loss:.3f}" if result.val_loss is not None else ""
    say(f"[bold green]Registered[/] {result.model_id}")
    say(f"  adapter       {escape(result.adapter_path)}")
    say(
        f"  loss          {steps[0].loss:.3f} at step 1 → {steps[-1].loss:.3f} at step {len(steps)}"
        f" (final train {result.train_loss:.3f}{val})"
    )
    say(f"  time          {_duration(result.seconds)}")
    say("Use it:")
    say(f'  modelatlas run {result.model_id} "your prompt"')
    say(f"  modelatlas eval TEST.jsonl --model {result.model_id} --model {result.record.base_model}")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"
