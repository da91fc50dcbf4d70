"""One model lifecycle (issue 12, item 5): Model as an async context manager, every call kind
through one instrumented path (timed, priced, logged), and streams that free their slot when
their caller leaves. Driven by the deterministic echo backend and the bundled models."""

from __future__ import annotations

import asyncio

import pytest

from modelatlas import store
from modelatlas.backends import RetryPolicy
from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.errors import RateLimitError
from modelatlas.loading import load_model
from tests.conftest import run


def echo(options=None, price=None, **kw):
    record = ModelRecord(id="test/echo", backend="echo", options=options or {}, price=price)
    return load_model(record, **kw)


def kinds() -> list[tuple[str, bool]]:
    return [(c.kind, c.ok) for c in reversed(store.recent_calls())]


def test_a_loglikelihood_call_is_timed_and_logged():
    model = echo({"responses": {"2+2=": "4"}}, log_calls=True, price=Price(per_hour=3600.0))
    score = run(model.loglikelihood("2+2=", "4"))
    assert score.is_greedy
    [call] = store.recent_calls()
    assert (call.kind, call.ok, call.model_id) == ("loglikelihood", True, "test/echo")
    assert call.latency_s > 0
    assert call.cost_usd == pytest.approx(call.latency_s, rel=0.5)  # $1 a second, priced by the clock


def test_every_call_kind_goes_into_the_call_log():
    model = echo({"responses": {"2+2=": "4"}}, log_calls=True)

    async def calls():
        await model.generate("a b")
        async for _ in model.stream("c d"):
            pass
        await model.embed(["x"])
        await model.loglikelihood("2+2=", "4")

    run(calls())
    assert kinds() == [("generate", True), ("stream", True), ("embed", True), ("loglikelihood", True)]
    assert all(c.latency_s > 0 for c in store.recent_calls())


def test_a_failed_call_of_any_kind_is_logged_once_after_its_retries():
    model = echo({"fail_first": 9, "retry_after_s": 0.0}, log_calls=True, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(RateLimitError):
        run(model.generate("x"))
    assert model.backend.calls == 2 and kinds() == [("generate", False)]


def test_model_is_an_async_context_manager_and_closing_twice_is_harmless(smollm2_path):
    record = ModelRecord(id="local/smollm2-135m-instruct", backend="llamacpp", location=smollm2_path)

    async def scenario():
        model = load_model(record)
        async with model as entered:
            assert entered is model and model._loaded  # loaded on enter, before any call
            done = await model.generate("Say hi", max_tokens=2)
        assert not model._loaded
        await model.aclose()  # a second close does nothing
        again = await model.generate("Say hi", max_tokens=2)  # a call after close loads it again
        await model.aclose()
        return done, again

    done, again = run(scenario())
    assert done.usage.output_tokens >= 1 and again.usage.output_tokens >= 1


def test_a_stream_left_early_frees_its_slot_and_is_logged_at_once():
    """The caller closes the stream after one chunk: the slot is free for the next call at once
    and the call log says the stream was cut, before any garbage collection."""
    model = echo({"reply": "one two three four five", "delay_s": 0.01}, log_calls=True, max_concurrency=1)

    async def scenario():
        stream = model.stream("hi")
        first = await anext(stream)
        await stream.aclose()
        logged = kinds()
        # the only slot is free: this would wait forever if the closed stream still held it
        done = await asyncio.wait_for(model.generate("again"), timeout=5)
        return first, logged, done

    first, logged, done = run(scenario())
    assert first.text == "one" and logged == [("stream", False)]
    assert done.text == "one two three four five"
