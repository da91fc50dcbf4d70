"""One prompt to several models at once, streamed side by side (CLI demo, studio playground)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

from modelatlas.backends.model import Model
from modelatlas.types import Chunk, Prompt


async def side_by_side(
    models: Sequence[Model],
    text: str,
    system: str | None = None,
    prompt_of: Callable[[Model], Prompt] | None = None,
    **params,
) -> AsyncIterator[tuple[int, Chunk | BaseException]]:
    """Yield ``(model index, chunk)`` as each model produces it; a failure is yielded, not raised.

    ``prompt_of(model)`` gives what to ask a model instead of ``text`` (a prompt with images);
    what it raises is that model's failure."""
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(i: int, model: Model) -> None:
        try:
            prompt = prompt_of(model) if prompt_of else model.prompt_for(text, system)
            async for chunk in model.stream(prompt, **params):
                await queue.put((i, chunk))
        except Exception as exc:  # one model's failure must not stop the others
            await queue.put((i, exc))
        finally:
            await queue.put((i, done))

    tasks = [asyncio.create_task(pump(i, m)) for i, m in enumerate(models)]
    remaining = len(tasks)
    try:
        while remaining:
            i, item = await queue.get()
            if item is done:
                remaining -= 1
                continue
            yield i, item
    finally:
        for task in tasks:
            task.cancel()
