"""The leaderboard in the terminal (rich tables), read from a run summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from modelatlas.evals.results import MetricSummary, PairwiseTest, RunSummary
from modelatlas.formats import usd


class WithCI(Protocol):
    """A mean with its interval: a metric's summary, a leaderboard entry."""

    @property
    def mean(self) -> float | None: ...
    @property
    def ci_low(self) -> float | None: ...
    @property
    def ci_high(self) -> float | None: ...


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_ci(m: WithCI) -> str:
    """``0.62 [0.48, 0.75]`` from a metric's ``mean``, ``ci_low`` and ``ci_high``."""
    if m.mean is None:
        return "-"
    if m.ci_low is None or m.ci_high is None:
        return fmt(m.mean)
    return f"{fmt(m.mean)} [{fmt(m.ci_low)}, {fmt(m.ci_high)}]"


def fmt_cost(value: float | None) -> str:
    return usd(value)


def _title(summary: RunSummary) -> str:
    name = f" ({summary.name})" if summary.name else ""
    return f"Run {summary.run_id}{name}: {summary.dataset.path}, {summary.dataset.n} items"


def short_names(summary: RunSummary) -> dict[str, str]:
    """Arm labels without the provider prefix they all share (``local/``), to keep tables narrow."""
    labels = summary.arm_labels
    prefixes = {label.split("/", 1)[0] for label in labels}
    if len(prefixes) == 1 and all("/" in label for label in labels):
        return {label: label.split("/", 1)[1] for label in labels}
    return {label: label for label in labels}


def _metric_cell(m: MetricSummary) -> Text:
    """The mean, with its 95% interval underneath in dim type."""
    if m.mean is None:
        return Text("-")
    cell = Text(fmt(m.mean))
    if m.ci_low is not None and m.ci_high is not None:
        cell.append(f"\n{fmt(m.ci_low)}–{fmt(m.ci_high)}", style="dim")
    return cell


def models_table(summary: RunSummary) -> Table:
    """One row per arm, best first; the best arm is highlighted. Metric cells show mean and 95% CI."""
    models = summary.models
    names = summary.metric_names
    short = short_names(summary)
    table = Table(
        title=_title(summary),
        title_justify="left",
        caption="metric: mean, 95% CI below",
        caption_justify="left",
    )
    # n and err only when they tell something (the title gives the item count)
    show_n = len({m.n for m in models}) > 1
    show_err = any(m.errors for m in models)
    table.add_column("arm", style="cyan", overflow="fold", min_width=18)
    if show_n:
        table.add_column("n", justify="right")
    if show_err:
        table.add_column("err", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    speech = any(m.audio_seconds for m in models)  # a speech run: audio seconds and real-time factor
    for column in ("p50 s", "tok/s", *(("audio s", "RTF") if speech else ()), "cost"):
        table.add_column(column, justify="right")
    for rank, m in enumerate(models):
        best = rank == 0 and bool(names) and m.metrics[names[0]].mean is not None
        latency = m.latency.p50
        counts = ([str(m.n)] if show_n else []) + ([str(m.errors)] if show_err else [])
        table.add_row(
            Text(("★ " if best else "") + short[m.model]),
            *counts,
            *[_metric_cell(m.metrics[name]) for name in names],
            "-" if latency is None else f"{latency:.2f}",
            fmt(m.tokens_per_s, 0),
            *((fmt(m.audio_seconds, 1), fmt(m.real_time_factor)) if speech else ()),
            fmt_cost(m.cost_usd),
            style="bold green" if best else None,
        )
    return table


def _verdict(row: PairwiseTest, short: dict[str, str], narrow: bool) -> Text:
    if not row.significant:
        return Text("no significant difference", style="dim")
    if narrow:  # the row names a and b already
        return Text(row.verdict, style="bold")
    winner = row.a if row.verdict == "a better" else row.b
    return Text(f"{short.get(winner, winner)} better", style="bold")


def pairwise_table(summary: RunSummary, narrow: bool = False) -> Table | None:
    """Significant differences first; the rest are counted in the caption when there are many.
    ``narrow``: a terminal under 120 columns, where the verdict says "a better" or "b better"."""
    rows = summary.pairwise
    if not rows:
        return None
    short = short_names(summary)
    rows = sorted(rows, key=lambda r: (not r.significant, r.p_value if r.p_value is not None else 1))
    shown = rows if len(rows) <= 12 else [r for r in rows if r.significant][:12] or rows[:6]
    hidden = len(rows) - len(shown)
    caption = f"{hidden} more comparisons: no significant difference" if hidden else None
    table = Table(
        title="Pairwise (paired bootstrap CI; McNemar or permutation p)",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    for column in ("a vs b", "metric", "a−b", "95% CI", "p", "verdict"):
        table.add_column(column, justify="right" if column in ("a−b", "p") else "left", overflow="fold")
    for r in shown:
        ci = "-" if r.ci_low is None else f"{fmt(r.ci_low, 3)}–{fmt(r.ci_high, 3)}"
        p = "-" if r.p_value is None else f"{r.p_value:.3g}"
        pair = f"{short.get(r.a, r.a)}\nvs {short.get(r.b, r.b)}"
        table.add_row(pair, r.metric, fmt(r.diff, 3), ci, p, _verdict(r, short, narrow))
    return table


def judge_table(summary: RunSummary) -> Table | None:
    rows = summary.judge_pairwise
    if not rows:
        return None
    table = Table(title="Judge pairwise (share of items where A wins; ties count half)", title_justify="left")
    for column in ("a", "b", "metric", "A win rate", "n", "errors"):
        table.add_column(column, justify="right" if column in ("n", "errors") else "left")
    for r in rows:
        rate = fmt_ci(MetricSummary(mean=r.a_win_rate, ci_low=r.ci_low, ci_high=r.ci_high))
        table.add_row(r.a, r.b, r.metric, rate, str(r.n), str(r.errors))
    return table


def leaderboard(summary: RunSummary | Sequence[RunSummary], narrow: bool = False) -> RenderableType:
    """The tables of one summary, or of several runs' summaries, as one rich renderable."""
    summaries = [summary] if isinstance(summary, RunSummary) else list(summary)
    parts: list[RenderableType] = []
    for s in summaries:
        tables = [models_table(s), pairwise_table(s, narrow), judge_table(s), status_note(s)]
        parts.extend(t for t in tables if t is not None)
    return Group(*parts)


def status_note(summary: RunSummary) -> Text | None:
    """A line under the tables for a run that is not a finished result."""
    status, run_id = summary.status, summary.run_id
    if status == "failed":
        return Text(
            "Failed: every answer was an error, so this run ranks on no leaderboard.", style="bold red"
        )
    if status == "interrupted":
        path = summary.dataset.path
        return Text(
            f"Interrupted: its process is gone. Finish it: modelatlas eval {path} --resume {run_id}",
            style="yellow",
        )
    return None


def print_summary(summary: RunSummary | Sequence[RunSummary], console: Console | None = None) -> None:
    console = console or Console()
    console.print(leaderboard(summary, narrow=console.width < 120))
