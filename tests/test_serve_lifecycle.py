"""Model lifecycle: load on first use, unload least recently used past the memory budget."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers import free_port, python_server

openai = pytest.importorskip("openai")

CHAT = "local/smollm2-135m-instruct"  # about 0.41 GB by the catalog's estimate
BASE = "local/gemma-3-270m"  # about 0.58 GB
BUDGET = "0.9"  # either one fits, both do not


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lifecycle")
    port = free_port()
    env = {**os.environ, "MODELATLAS_HOME": str(folder / "home")}
    env.pop("MODELATLAS_DATABASE_URL", None)
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--no-auth", "--memory-budget", BUDGET]
    args += ["--model", CHAT, "--model", BASE]
    with python_server(args, port, ready_path="/health", log_path=str(folder / "server.log"), env=env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def loaded(server: str) -> list[str]:
    return httpx.get(f"{server}/health").json()["loaded"]


def chat(client, text: str = "What is the capital of France?") -> str:
    messages = [{"role": "user", "content": text}]
    answer = client.chat.completions.create(model=CHAT, messages=messages, max_tokens=8, temperature=0)
    return answer.choices[0].message.content


def complete(client) -> str:
    answer = client.completions.create(model=BASE, prompt="One, two, three,", max_tokens=4, temperature=0)
    return answer.choices[0].text


def test_least_recently_used_model_is_unloaded_and_reloads(server, client):
    assert loaded(server) == []
    first = chat(client)
    assert loaded(server) == [CHAT]
    assert complete(client)
    assert loaded(server) == [BASE]
    again = chat(client)
    assert loaded(server) == [CHAT]
    assert again == first  # reloaded from scratch, same greedy answer


def queue_depth(server: str, model: str) -> int:
    line = f'modelatlas_queue_depth{{model="{model}"}} '
    text = httpx.get(f"{server}/metrics").text
    return int(float(next(x for x in text.splitlines() if x.startswith(line)).split()[-1]))


def test_a_model_in_use_is_never_unloaded(server, client):
    chat(client)  # CHAT loaded, BASE not
    assert loaded(server) == [CHAT]
    count = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(
            client.chat.completions.create, model=CHAT, messages=count, max_tokens=150, temperature=0
        )
        while queue_depth(server, CHAT) == 0:  # wait until CHAT holds its slot
            assert not busy.done()
        assert complete(client)  # BASE loads over the budget instead of unloading CHAT
        assert sorted(loaded(server)) == sorted([CHAT, BASE])
        assert busy.result().choices[0].message.content.startswith("1")
    assert chat(client)


def test_a_model_over_the_budget_loads_alone(caplog):
    from modelatlas.catalog.resolve import resolve
    from modelatlas.serve.models import ServedModels

    async def scenario() -> tuple[list[str], list[str], bool]:
        pool = ServedModels([resolve(CHAT), resolve(BASE)], memory_budget_gb=0.5)
        try:
            first = await pool.get(CHAT)
            before = pool.loaded
            engine = first.backend.engine
            users = engine.users  # other tests in this process may share the engine
            await pool.get(BASE)  # needs more than 0.5 GB alone
            released = engine.users == users - 1 and (engine.users > 0 or engine._llm is None)
            return before, pool.loaded, released
        finally:
            await pool.aclose()

    with caplog.at_level(logging.WARNING, logger="modelatlas.serve.models"):
        before, after, freed = asyncio.run(scenario())
    assert before == [CHAT]
    assert after == [BASE]
    assert freed  # the pool let the engine go (and its memory, when nobody else holds it)
    assert any("more than the memory budget" in r.getMessage() for r in caplog.records)


def test_the_memory_need_counts_the_batch_kv_cache():
    """--parallel N gives a llama.cpp model a second KV cache: the budget must count it."""
    from modelatlas.backends.gguf_header import kv_bytes_per_token
    from modelatlas.catalog.resolve import resolve
    from modelatlas.serve.models import batch_cache_gb, memory_need

    alone = resolve(CHAT)
    batched = alone.model_copy(update={"options": {**alone.options, "parallel": 4}})
    # SmolLM2-135M: 30 layers, 3 KV heads of 64 dimensions, f16 K and V
    assert kv_bytes_per_token(alone.location) == 2 * 30 * 3 * 64 * 2
    assert batch_cache_gb(alone) == 0
    assert batch_cache_gb(batched) == pytest.approx(23040 * 16384 / 2**30)
    assert memory_need(batched) == pytest.approx(memory_need(alone) + batch_cache_gb(batched))
