"""`modelatlas demo`: the main job, end to end on the bundled example use case.

The journey in small, on 40 support questions of a fictional EdTech startup: choose among the
three bundled text models (SmolLM2-135M-Instruct, Gemma 3 270M base, Qwen2.5-Coder-0.5B-Instruct)
on quality with intervals and under load, then improve the pick (few-shot examples, RAG over the
example's documents) against its zero-shot baseline, and print the decision with its reasons.
Answers are cached, so a second run takes seconds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from modelatlas.cli.common import console, escape, handle_errors

DEMO_MODELS = ["local/smollm2-135m-instruct", "local/gemma-3-270m", "local/qwen2.5-coder-0.5b-instruct"]
DEMO_METRIC = "f1"
EXAMPLE = Path("examples") / "edtech-support"
LOAD_SECONDS = 5.0
# The first 20 of the 40 questions and 64 tokens per answer: on 2 cores the whole demo then
# runs in under 6 minutes cold (all 40 at 96 tokens took 11.5: Qwen2.5-Coder 0.5B, usually the
# pick, is about 10x slower than SmolLM2, and RAG prompts are 1,000 tokens). --limit 40: all.
DEMO_ITEMS = 20
MAX_TOKENS = 64


@handle_errors
def demo(
    report: Annotated[str, typer.Option(help="Where to write the HTML report.")] = "modelatlas-report.html",
    limit: Annotated[int, typer.Option(min=1, help="The first N questions (40 in all).")] = DEMO_ITEMS,
) -> None:
    """Choose among the bundled text models on the example support dataset, then improve the pick."""
    from modelatlas.cli.choose import show
    from modelatlas.cli.improve import improve_command
    from modelatlas.evals.report_files import atomic_write
    from modelatlas.strategies.choose import Constraints, choose
    from modelatlas.strategies.choose.report_html import decision_html
    from modelatlas.strategies.choose.saved import save

    folder = example_folder()
    out, err = console(), console(stderr=True)
    out.print(
        "[bold]modelatlas demo[/]: which small local model should answer Brightpath Learning's "
        "support questions, and do few-shot examples or RAG over the help docs make it better?\n"
        f"Candidates: {', '.join(DEMO_MODELS)} · data: {folder / 'test.jsonl'}\n"
    )
    system = _system(folder)
    decision = asyncio.run(
        choose(
            folder / "test.jsonl", Constraints(models=DEMO_MODELS, task=None), concurrency=4,
            duration_s=LOAD_SECONDS, max_tokens=MAX_TOKENS, limit=limit, metric=DEMO_METRIC, system=system,
            say=lambda text: err.print(escape(text)),
        )
    )  # fmt: skip
    save(decision)
    decision_report = str(Path(report).with_name(Path(report).stem + "-decision.html"))
    atomic_write(decision_report, decision_html(decision))
    out.rule("1. The decision")
    show(decision)
    if decision.pick is None:
        return
    out.rule(f"2. Improving {decision.pick}")
    improve_command(
        model=decision.pick, dataset=str(folder / "test.jsonl"), docs=str(folder / "docs"),
        train=str(folder / "train.jsonl"), finetune=False, few_shot=3, metric=[DEMO_METRIC], limit=limit,
        max_tokens=MAX_TOKENS, system=system, report=report,
    )  # fmt: skip
    _next_steps(decision.pick, report, decision_report)


def _system(folder: Path) -> str | None:
    path = folder / "system.txt"
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


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


def _next_steps(pick: str, report: str, decision_report: str) -> None:
    out = console()
    out.print(f"\nThe decision: [bold]{Path(decision_report).resolve()}[/] (it opens offline).")
    out.print(f"The improve report: [bold]{Path(report).resolve()}[/].")
    out.print("Serve the pick:  modelatlas keys create my-app   (prints the API key once)")
    out.print(f"                 modelatlas serve --model {pick}")
    out.print("Explore it all:  modelatlas studio --open   (Decisions, Benchmarks, Improve)")
