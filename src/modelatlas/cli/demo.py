"""`modelatlas demo`: the main job, end to end on the bundled example use case.

Two local models (a tuned chat model and a base model), zero-shot and few-shot, on 40 support
questions of a fictional EdTech startup: a leaderboard with confidence intervals and significance,
an HTML report, and what to do next. Cached answers make a second run take seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelatlas.cli.common import console, handle_errors

if TYPE_CHECKING:
    from modelatlas.evals.results import RunSummary

DEMO_MODELS = ["local/smollm2-135m-instruct", "local/gemma-3-270m"]
DEMO_STRATEGIES = ["zero-shot", "few-shot:3"]
DEMO_METRICS = ["f1", "rouge_l", "semantic_similarity"]
EXAMPLE = Path("examples") / "edtech-support"


@handle_errors
def demo(
    report: Annotated[str, typer.Option(help="Where to write the HTML report.")] = "modelatlas-report.html",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
) -> None:
    """Compare the two bundled text models, zero-shot and few-shot, on the example support dataset."""
    from modelatlas.cli.eval import _outputs, _run
    from modelatlas.evals.plan import make_plan

    folder = example_folder()
    out = console()
    out.print(
        "[bold]modelatlas demo[/]: which small local model answers Brightpath Learning's support "
        "questions best, and does few-shot prompting help?\n"
        f"Models: {', '.join(DEMO_MODELS)} · strategies: {', '.join(DEMO_STRATEGIES)} · "
        f"metrics: {', '.join(DEMO_METRICS)} · data: {folder / 'test.jsonl'}\n"
    )
    system = (
        (folder / "system.txt").read_text(encoding="utf-8").strip()
        if (folder / "system.txt").exists()
        else None
    )
    plan = make_plan(
        str(folder / "test.jsonl"),
        DEMO_MODELS,
        strategies=DEMO_STRATEGIES,
        metrics=DEMO_METRICS,
        limit=limit,
        pool_path=str(folder / "train.jsonl"),
        system=system,
        max_tokens=96,
        name="demo: edtech support",
    )
    result = _run(plan, None, quiet=False)
    _outputs(result.run_id, result.summary, plan, json_out=False, report=report, samples=None)
    _next_steps(result.summary, report)


def example_folder() -> Path:
    """The example beside the working folder, or in the source checkout this package runs from."""
    from modelatlas.errors import DatasetError

    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (base / EXAMPLE / "test.jsonl").exists():
            return base / EXAMPLE
    raise DatasetError(
        f"The example dataset {EXAMPLE}/test.jsonl is not here.",
        hint="Run the demo from the modelatlas source folder (where `make demo` runs it).",
    )


def _next_steps(summary: RunSummary, report: str) -> None:
    best = summary.models[0] if summary.models else None
    out = console()
    out.print(f"\nOpen the report: [bold]{Path(report).resolve()}[/] (it works offline).")
    if best:
        out.print(f"Best arm here: [bold]{best.model}[/].")
        out.print("Serve it:        modelatlas keys create my-app   (prints the API key once)")
        out.print(f"                 modelatlas serve --model {best.model_id}")
    out.print("Explore it all:  modelatlas studio --open")
