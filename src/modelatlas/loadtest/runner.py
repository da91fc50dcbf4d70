"""Closed-loop load: at each concurrency level, that many workers send the workload's prompts
one after another (cycling through them) until the level's time or request cap runs out; a
request in flight at the deadline is waited for and counted. One unmeasured request first
warms the model up (a local model loads on it), as guidellm and llmperf do."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from modelatlas.errors import ConfigError
from modelatlas.loadtest.results import LevelResult, LoadReport, RequestSample
from modelatlas.loadtest.senders import Sender
from modelatlas.loadtest.summary import summarise
from modelatlas.types import Message

Progress = Callable[[int, RequestSample], None]  # (concurrency, the request that just ended)


async def run_level(
    sender: Sender,
    prompts: Sequence[list[Message]],
    concurrency: int,
    duration_s: float,
    max_tokens: int,
    max_requests: int | None = None,
    stop: Callable[[], bool] = lambda: False,
    progress: Progress | None = None,
) -> list[RequestSample]:
    """The requests of one level, in the order they ended. ``stop`` is asked before each send
    (a budget that ran out)."""
    if not prompts:
        raise ConfigError("The workload has no prompts.", hint="Give a dataset with at least one row.")
    t0 = time.perf_counter()
    numbers = itertools.count()
    samples: list[RequestSample] = []

    async def worker() -> None:
        while (now := time.perf_counter() - t0) < duration_s and not stop():
            n = next(numbers)
            if max_requests is not None and n >= max_requests:
                return
            sample = await sender.send(prompts[n % len(prompts)], max_tokens, now)
            samples.append(sample)
            if progress is not None:
                progress(concurrency, sample)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples


async def load_test(
    sender: Sender,
    prompts: Sequence[list[Message]],
    levels: Sequence[int],
    duration_s: float,
    max_tokens: int,
    *,
    model: str,
    dataset: str,
    max_requests: int | None = None,
    budget_usd: float | None = None,
    progress: Progress | None = None,
) -> tuple[LoadReport, RequestSample]:
    """Every level in turn; the report and the warm-up request (which the server saw too)."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    warmup = await sender.send(prompts[0], max_tokens, 0.0)
    spent = [warmup.cost_usd]

    def over_budget() -> bool:
        return budget_usd is not None and spent[0] >= budget_usd

    def counted(concurrency: int, sample: RequestSample) -> None:
        spent[0] += sample.cost_usd
        if progress is not None:
            progress(concurrency, sample)

    results: list[LevelResult] = []
    for concurrency in levels:
        samples = await run_level(
            sender, prompts, concurrency, duration_s, max_tokens, max_requests, over_budget, counted
        )
        results.append(summarise(concurrency, samples))
    note = f"Stopped at the budget of ${budget_usd:g}." if over_budget() else None
    if warmup.error:
        note = f"The warm-up request failed: {warmup.error}"
    report = LoadReport(
        model=model,
        target=sender.where,
        dataset=dataset,
        prompts=len(prompts),
        max_tokens=max_tokens,
        duration_s=duration_s,
        max_requests=max_requests,
        levels=results,
        started_at=started,
        note=note,
    )
    return report, warmup


def parse_levels(text: str) -> list[int]:
    """``"1,4,16"`` -> [1, 4, 16]."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or any(n < 1 or n > 256 for n in levels):
        raise ConfigError(
            f"--concurrency {text!r} is not a list of whole numbers from 1 to 256.",
            hint="Write it like --concurrency 1,4,16.",
        )
    return levels


def parse_duration(text: str) -> float:
    """``"60s"``, ``"2m"``, ``"1.5m"`` or plain seconds -> seconds."""
    value = text.strip().lower()
    scale = 1.0
    if value.endswith("ms"):
        value, scale = value[:-2], 0.001
    elif value.endswith("s"):
        value = value[:-1]
    elif value.endswith("m"):
        value, scale = value[:-1], 60.0
    try:
        seconds = float(value) * scale
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 24 * 3600:
        raise ConfigError(f"--duration {text!r} is not a time.", hint="Write it like 60s, 2m or 30.")
    return seconds
