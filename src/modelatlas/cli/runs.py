"""`modelatlas runs`: list, show, compare and export evaluation runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from modelatlas.cli.common import console, handle_errors, print_json

if TYPE_CHECKING:
    from modelatlas.evals.results import Leaderboard

app = typer.Typer(help="Evaluation runs: list, show, compare, export.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_runs(
    limit: Annotated[int, typer.Option(min=1)] = 20,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The most recent runs."""
    from modelatlas.evals.records import list_runs as recent

    runs = recent(limit)
    if json_out:
        print_json([r.model_dump() for r in runs])
        return
    _print_runs(runs)


# Columns of `runs list`: (name, width); "models" takes what is left. The optional ones are
# added, in this order, while the models column keeps 16 characters. Every cell stays on one
# line, cut with an ellipsis (--json has it all).
_RUN_COLUMNS = [("run", 24), ("dataset", 12), ("n", 3), ("models", 0), ("status", 11)]
_OPTIONAL = [("started", 11), ("metrics", 12), ("strategies", 12), ("name", 10)]
_MODELS_AT_LEAST = 20


def _print_runs(runs) -> None:
    from pathlib import Path

    from rich import box
    from rich.table import Table

    out = console()

    def left(columns) -> int:  # what the models column gets: padding and a rule take 3 per column
        return out.width - sum(w + 3 for _, w in columns) - 1

    columns = list(_RUN_COLUMNS)
    for column in _OPTIONAL:
        if left([*columns, column]) >= _MODELS_AT_LEAST:
            columns.append(column)
    table = Table(title="Evaluation runs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, width in columns:
        table.add_column(
            name, width=width or max(left(columns), 8), no_wrap=True, overflow="ellipsis",
            justify="right" if name == "n" else "left",
        )  # fmt: skip
    for r in runs:
        cells = {
            "run": r.id,
            "dataset": Path(r.dataset_path).name,
            "n": str(r.dataset_n),
            "models": ", ".join(m.removeprefix("local/") for m in r.models),  # local/: the usual case
            "status": r.status,
            "started": _local_time(r.created_at),
            "metrics": ", ".join(r.metrics),
            "strategies": ", ".join(r.strategies),
            "name": r.name or "",
        }
        table.add_row(*(cells[name] for name, _ in columns))
    out.print(table)


def _local_time(stamp: str | None) -> str:
    """An ISO time as this machine's local "MM-DD HH:MM"."""
    from datetime import datetime

    if not stamp:
        return ""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%m-%d %H:%M")
    except ValueError:
        return stamp


@app.command("show")
@handle_errors
def show(run_id: str, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A run's leaderboard, intervals and pairwise tests."""
    from modelatlas.evals.finish import summary_for

    summary = summary_for(run_id)
    if json_out:
        print_json(summary)
        return
    from modelatlas.evals.report_terminal import print_summary

    print_summary(summary, console())
    _say_images(run_id)


def _say_images(run_id: str) -> None:
    """Where an image run's pictures are (each stored output names its files and their sha256)."""
    from modelatlas.evals.image_plan import images_dir
    from modelatlas.evals.records import load_items

    count = sum(len(r.output.images or []) for r in load_items(run_id))
    if count:
        console().print(
            f"Images: {count} in {images_dir(run_id)} "
            f"(`modelatlas runs export {run_id} --out DIR` copies them)"
        )


@app.command("compare")
@handle_errors
def compare(run_a: str, run_b: str, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Two runs side by side (paired tests when both used the same dataset)."""
    from modelatlas.evals.compare import compare_runs

    result = compare_runs(run_a, run_b)
    if json_out:
        print_json(result)
        return
    from rich.table import Table

    same = "same dataset: paired test" if result.same_dataset else "different datasets: no paired test"
    table = Table(title=f"{run_a} (a) against {run_b} (b) · {same}", title_justify="left")
    for column in ("arm", "metric", "a", "b", "a − b", "95% CI", "p", "verdict"):
        table.add_column(column)
    for r in result.rows:
        ci = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]" if r.paired else ""
        p = f"{r.p_value:.3g}" if r.paired else ""
        table.add_row(r.arm, r.metric, _num(r.a), _num(r.b), _num(r.diff), ci, p, r.verdict or "")
    console().print(table)


@app.command("leaderboard")
@handle_errors
def leaderboard(
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="The dataset file name (default: your last run's).")
    ] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Rank by this metric.")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One dataset's results ranked on one metric, a row per model and strategy (the studio's Benchmarks)."""
    from modelatlas.errors import ConfigError
    from modelatlas.evals.leaderboard import across_runs

    board = across_runs(dataset, metric)
    if dataset and dataset not in board.datasets:
        known = ", ".join(board.datasets) or "none yet"
        raise ConfigError(f"No run on a dataset named {dataset!r}.", hint=f"Datasets: {known}.")
    if metric and board.metric != metric:
        known = ", ".join(board.metrics) or "none yet"
        raise ConfigError(f"No run scored {metric!r}.", hint=f"Metrics: {known}.")
    if json_out:
        print_json(board)
        return
    if not board.entries:
        console().print("No runs yet. Make one: modelatlas eval DATASET -m MODEL")
        return
    _print_board(board)


def _print_board(board: Leaderboard) -> None:
    from rich.table import Table

    from modelatlas.evals.report_terminal import fmt_ci, fmt_cost

    title = f"{board.metric} on {board.dataset} ({board.items} items), newest run per model and strategy"
    table = Table(title=title, title_justify="left")
    for column in ("#", "model", "strategy", "run", board.metric, "n", "p50 s", "$/1k"):
        table.add_column(column, justify="right" if column in ("#", "n", "p50 s", "$/1k") else "left")
    for rank, e in enumerate(board.entries, 1):
        p50 = "-" if e.latency_p50 is None else f"{e.latency_p50:.2f}"
        mark = " =" if e.label in board.leaders else ""
        table.add_row(
            f"{rank}{mark}",
            e.model_id,
            e.strategy,
            e.run_id,
            fmt_ci(e),
            str(e.n),
            p50,
            fmt_cost(e.cost_per_1k),
        )
    out = console()
    out.print(table)
    if board.best:
        out.print(f"{board.best} is significantly ahead of every other entry.")
    elif board.leaders:
        out.print(f"= not significantly different from the first: {', '.join(board.leaders)}.")
    for note in board.notes:
        out.print(note)


@app.command("export")
@handle_errors
def export(
    run_id: str,
    fmt: Annotated[str, typer.Option("--format", help="json, jsonl or csv.")] = "json",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File to write (default: standard output).")
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(help="A folder: export.FORMAT in it, and an image run's pictures in images/."),
    ] = None,
) -> None:
    """Export a run: its summary (json) or its per-item results (jsonl, csv); --out DIR writes the
    export and every picture of an image run (images/, with index.jsonl naming each)."""
    import tempfile
    from pathlib import Path

    from modelatlas.errors import ConfigError
    from modelatlas.evals import records
    from modelatlas.evals.finish import summary_for
    from modelatlas.evals.report_files import write_csv, write_json, write_jsonl

    if fmt not in ("json", "jsonl", "csv"):
        raise ConfigError(f"Unknown format {fmt!r}.", hint="Valid values: json, jsonl, csv.")
    if out and output:
        raise ConfigError(
            "Give --out DIR or --output FILE, not both.", hint="--out DIR writes DIR/export.FORMAT."
        )
    folder = Path(out).expanduser() if out else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    target = Path(output) if output else (folder or Path(tempfile.mkdtemp())) / f"export.{fmt}"
    if fmt == "json":
        write_json(summary_for(run_id), target)
    elif fmt == "jsonl":
        write_jsonl(records.load_items(run_id), target)
    else:
        write_csv(records.load_items(run_id), target)
    if folder is not None:
        from modelatlas.evals.image_plan import export_images

        pictures = export_images(run_id, folder)
        console(stderr=True).print(
            f"Wrote {target}" + (f" and {pictures} images in {folder / 'images'}" if pictures else "")
        )
    elif output:
        console(stderr=True).print(f"Wrote {target}")
    else:
        typer.echo(target.read_text(encoding="utf-8"), nl=False)


def _num(value) -> str:
    return "?" if value is None else f"{value:.3f}"
