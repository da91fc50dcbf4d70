"""A load test from a model id and a dataset: where the requests go, what they say, what they
may cost. A local model is served by `modelatlas serve` for the test; a hosted one is called
with its own client, capped in requests and checked against the budget before anything is sent;
``base_url`` points the test at any OpenAI-compatible server instead (vLLM, llama-server,
Ollama, a deployed `modelatlas serve`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from modelatlas.errors import ConfigError, MissingAPIKeyError
from modelatlas.formats import usd
from modelatlas.loadtest.results import LoadReport, RequestSample
from modelatlas.loadtest.runner import Progress, load_test
from modelatlas.loadtest.senders import HttpSender, ModelSender, Sender
from modelatlas.records import ModelRecord
from modelatlas.types import Message

HOSTED_REQUEST_CAP = 20  # per level, unless --max-requests says otherwise
CHARS_PER_TOKEN = 3.0  # a cautious count for the cost check (real text runs nearer 4)


def workload(dataset: str | Path, limit: int | None = None) -> list[list[Message]]:
    """Each row's chat: its messages, or its question as one user message."""
    from modelatlas.evals.datasets import load_dataset

    data = load_dataset(dataset, limit=limit)
    prompts = []
    for item in data.items:
        if item.audio is not None:
            where = f"{dataset}, line {item.line}" if item.line else f"item {item.id!r}"
            raise ConfigError(
                f"{where}: a load test sends chat prompts; this row holds audio.",
                hint="Load-test a speech model with its own client, or give a dataset of text prompts.",
            )
        prompts.append(list(item.messages) if item.messages else [Message.user(item.prompt_text)])
    return prompts


def cost_bound(
    record: ModelRecord, prompts: Sequence[list[Message]], requests: int, max_tokens: int
) -> float | None:
    """The most ``requests`` calls can cost (every answer ``max_tokens`` long), or None when the
    record has no price."""
    if record.price is None:
        return None
    sizes = [sum(len(m.text) for m in p) / CHARS_PER_TOKEN + 4 * len(p) for p in prompts]
    mean_in = sum(sizes) / len(sizes)
    return record.price.cost(int(mean_in * requests) + 1, max_tokens * requests)


async def run_loadtest(
    model: str,
    dataset: str | Path,
    levels: Sequence[int],
    duration_s: float,
    max_tokens: int = 128,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    max_requests: int | None = None,
    budget_usd: float | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> tuple[LoadReport, RequestSample]:
    prompts = workload(dataset, limit)
    if not prompts:
        raise ConfigError(f"{dataset} has no rows.", hint="A load test needs at least one prompt.")
    async with _sender(
        model, levels, prompts, max_tokens, base_url, api_key_env, max_requests, budget_usd
    ) as (
        sender,
        cap,
    ):
        return await load_test(
            sender, prompts, levels, duration_s, max_tokens,
            model=model, dataset=str(dataset), max_requests=cap, budget_usd=budget_usd, progress=progress,
        )  # fmt: skip


@contextlib.asynccontextmanager
async def _sender(
    model: str,
    levels: Sequence[int],
    prompts: Sequence[list[Message]],
    max_tokens: int,
    base_url: str | None,
    api_key_env: str | None,
    max_requests: int | None,
    budget_usd: float | None,
) -> AsyncIterator[tuple[Sender, int | None]]:
    if base_url:
        key = _key(api_key_env, model) if api_key_env else None
        sender: Sender = HttpSender(base_url, model, key)
        cap = max_requests
    else:
        from modelatlas.backends.declared import facts
        from modelatlas.catalog.resolve import resolve

        record = resolve(model)
        if not facts(record).hosted:
            from modelatlas.loadtest.serving import local_server

            async with local_server(record.id, min(max(levels), 64), record.mode == "completion") as url:
                sender = HttpSender(url, record.id)
                try:
                    yield sender, max_requests
                finally:
                    await sender.aclose()
            return
        cap = max_requests or HOSTED_REQUEST_CAP
        _check_budget(record, prompts, cap * len(levels) + 1, max_tokens, budget_usd)
        sender = _hosted(record)
    try:
        yield sender, cap
    finally:
        await sender.aclose()


def _hosted(record: ModelRecord) -> ModelSender:
    from modelatlas.backends.retry import RetryPolicy
    from modelatlas.loading import load_model

    return ModelSender(load_model(record, retry=RetryPolicy(max_attempts=1)))


def _check_budget(
    record: ModelRecord,
    prompts: Sequence[list[Message]],
    requests: int,
    max_tokens: int,
    budget: float | None,
) -> None:
    if budget is None:
        return
    bound = cost_bound(record, prompts, requests, max_tokens)
    if bound is None:
        raise ConfigError(
            f"No price is known for {record.id}, so --budget-usd {budget:g} cannot be checked.",
            hint="Leave --budget-usd out to run without the check, or pick a priced model.",
        )
    if bound > budget:
        raise ConfigError(
            f"{requests} requests to {record.id} may cost up to {usd(bound)}, over --budget-usd {budget:g}.",
            hint="Lower --max-requests or --max-tokens, or raise --budget-usd.",
        )


def _key(variable: str, model: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise MissingAPIKeyError(variable, model)
    return value
