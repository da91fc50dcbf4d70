"""The one refcounted pool of open models (issue 12, item 5): opened once per record and
settings, closed when the last user releases it, kept when a user asks for it warm."""

from __future__ import annotations

import asyncio
import threading

import pytest

from modelatlas.backends.pool import ModelPool, ModelSettings, open_model
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ModelFileError
from tests.conftest import run

ECHO = ModelRecord(id="test/echo", backend="echo")


class CountingOpener:
    """The real opener, counting how many Models it built (and in which threads)."""

    def __init__(self):
        self.opened = 0
        self.threads: set[str] = set()

    def __call__(self, record, settings):
        self.opened += 1
        self.threads.add(threading.current_thread().name)
        return open_model(record, settings)


def test_two_users_share_one_model_and_the_last_release_closes_it():
    opener = CountingOpener()
    pool = ModelPool(opener)

    async def scenario():
        a = await pool.acquire(ECHO)
        b = await pool.acquire(ECHO)
        shared = (a is b, pool.users(a))
        await a.generate("hello")
        await pool.release(a)
        after_one = (pool.users(b), b._closed, len(pool.models))
        await pool.release(b)
        return shared, after_one, (pool.users(b), b._closed, pool.models)

    shared, after_one, after_both = run(scenario())
    assert shared == (True, 2) and opener.opened == 1
    assert after_one == (1, False, 1)
    assert after_both == (0, True, [])
    assert threading.current_thread().name not in opener.threads  # opened off the event loop


def test_concurrent_first_users_open_the_model_once():
    opener = CountingOpener()
    pool = ModelPool(opener)

    async def scenario():
        models = await asyncio.gather(*(pool.acquire(ECHO, load=True) for _ in range(6)))
        return models, pool.users(models[0])

    models, users = run(scenario())
    assert opener.opened == 1 and len({id(m) for m in models}) == 1 and users == 6
    assert models[0]._loaded


def test_other_settings_get_a_model_of_their_own():
    pool = ModelPool()

    async def scenario():
        plain = await pool.acquire(ECHO)
        cached = await pool.acquire(ECHO, ModelSettings(cache=True))
        other = await pool.acquire(ECHO.model_copy(update={"options": {"reply": "x"}}))
        return plain, cached, other

    plain, cached, other = run(scenario())
    assert len({id(plain), id(cached), id(other)}) == 3
    assert plain.cache is None and cached.cache is not None


def test_a_warm_model_stays_loaded_when_idle_until_trimmed():
    pool = ModelPool()

    async def scenario():
        async with pool.using(ECHO, warm=True, load=True) as model:
            pass
        idle = (pool.models == [model], model._loaded)
        async with pool.using(ECHO) as again:
            same = again is model
        await pool.trim()
        return idle, same, pool.models, model._closed

    idle, same, left, closed = run(scenario())
    assert idle == (True, True) and same and left == [] and closed


def test_a_failed_block_still_releases_and_a_failed_load_holds_nothing(tmp_path):
    pool = ModelPool()
    broken = ModelRecord(id="test/broken", backend="echo", options={"fail_first": 1})

    async def scenario():
        try:
            async with pool.using(broken) as model:
                raise RuntimeError("the user's own failure")
        except RuntimeError:
            pass
        return model

    model = run(scenario())
    assert pool.users(model) == 0 and model._closed and pool.models == []

    missing = ModelRecord(id="local/missing", backend="llamacpp", location=str(tmp_path / "none.gguf"))
    with pytest.raises(ModelFileError):
        run(pool.acquire(missing, load=True))
    assert pool.models == []


def test_the_pool_closes_a_real_llama_cpp_model_at_the_last_release(smollm2_path):
    """Two users of SmolLM2 load its weights once; the last release frees them."""
    record = ModelRecord(id="local/smollm2-135m-instruct", backend="llamacpp", location=smollm2_path)
    pool = ModelPool()

    async def scenario():
        a = await pool.acquire(record, load=True)
        b = await pool.acquire(record, load=True)
        engine = a.backend.engine
        users = engine.users
        first = await a.generate("Say hi", max_tokens=2)
        await pool.release(a)
        still = engine.users == users
        await pool.release(b)
        return a is b, first, still, engine.users == users - 1

    same, first, still, freed = run(scenario())
    assert same and first.usage.output_tokens >= 1
    assert still and freed


def test_an_evaluation_closes_the_models_it_opened(tmp_path, smollm2_path):
    """The runner takes its models from the shared pool and releases them when the run ends:
    none of the run's models (SmolLM2 on llama.cpp, the echo model) stays open after it."""
    import json

    from modelatlas import evals
    from modelatlas.backends.pool import shared_pool
    from modelatlas.catalog import user
    from modelatlas.evals.plan import make_plan

    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q1", "input": "Say hi", "reference": "hi"}) + "\n")
    user.add(ModelRecord(id="local/smol", backend="llamacpp", location=smollm2_path, mode="chat"))
    user.add(ModelRecord(id="test/echo", backend="echo"))
    plan = make_plan(str(qa), ["local/smol", "test/echo"], metrics=["f1"], max_tokens=2)

    during: dict[str, object] = {}

    def progress(label: str) -> None:  # called as each item finishes: the run's models are open
        during.update({m.id: m for m in shared_pool().models if m.id in plan.models})

    async def scenario():
        result = await evals.evaluate(plan, progress)
        return result, [m.id for m in shared_pool().models]

    result, left = run(scenario())
    assert len(result.summary.models) == 2
    assert sorted(during) == ["local/smol", "test/echo"]  # the run's models came from the pool
    assert all(m._closed and not m._loaded for m in during.values())  # and were closed after it
    assert "local/smol" not in left and "test/echo" not in left
