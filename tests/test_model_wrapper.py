"""The Model wrapper, driven by the deterministic echo backend (registered by entry point)."""

from __future__ import annotations

import asyncio
import time

import pytest

from modelatlas import store
from modelatlas.backends import RetryPolicy
from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.errors import ConfigError, ContextLengthExceededError, RateLimitError
from modelatlas.loading import load_model
from modelatlas.types import Message
from tests.conftest import run


def echo(options=None, price=None, **kw):
    record = ModelRecord(id="test/echo", backend="echo", options=options or {}, price=price)
    return load_model(record, **kw)


def test_generate_fills_usage_cost_and_timing():
    model = echo({"delay_s": 0.01}, price=Price(input=2.0, output=10.0))
    out = run(model.generate([Message.user("one two three four")], max_tokens=10))
    assert out.text == "one two three four"
    assert out.model == "test/echo"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (4, 4)
    assert out.usage.cost_usd == pytest.approx((4 * 2.0 + 4 * 10.0) / 1e6)
    assert out.timing.ttft_s is not None and 0 < out.timing.ttft_s <= out.timing.latency_s
    assert out.timing.tokens_per_s and out.timing.tokens_per_s > 0
    assert out.finish_reason == "stop"


def test_max_tokens_cuts_and_says_length():
    out = run(echo().generate("a b c d e f", max_tokens=3))
    assert out.text == "a b c" and out.finish_reason == "length" and out.usage.output_tokens == 3


def test_stream_yields_text_then_a_final_chunk_with_usage():
    async def collect():
        return [c async for c in echo({"reply": "x y z"}).stream("hello")]

    chunks = run(collect())
    assert "".join(c.text for c in chunks) == "x y z"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].usage.output_tokens == 3 and chunks[-1].finish_reason == "stop"
    assert chunks[-1].timing.latency_s > 0


def test_retries_transient_errors_honouring_retry_after():
    model = echo({"fail_first": 2, "retry_after_s": 0.3}, retry=RetryPolicy(max_attempts=4))
    start = time.perf_counter()
    out = run(model.generate("ok"))
    assert out.text == "ok"
    assert model.backend.calls == 3
    assert time.perf_counter() - start >= 0.6


def test_gives_up_after_max_attempts():
    model = echo({"fail_first": 10, "retry_after_s": 0.0}, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(RateLimitError):
        run(model.generate("never"))
    assert model.backend.calls == 3


def test_backoff_without_retry_after_grows():
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4, jitter=0.0)
    error = RateLimitError("x", retry_after=None)
    assert [policy.delay(n, error) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(1, RateLimitError("x", retry_after=7)) == 7


def test_concurrency_limit_is_respected():
    model = echo({"delay_s": 0.05}, max_concurrency=2)
    active = peak = 0

    async def one(i):
        nonlocal active, peak
        async for chunk in model.stream(f"w{i} x"):
            if chunk.text and chunk.text.startswith("w"):
                active += 1
                peak = max(peak, active)
        active -= 1

    async def many():
        await asyncio.gather(*(one(i) for i in range(6)))

    run(many())
    assert peak == 2


def test_context_guard_fails_before_generation():
    model = echo({"context_length": 10})
    with pytest.raises(ContextLengthExceededError) as info:
        run(model.generate("one two three four five six", max_tokens=5))
    assert info.value.prompt_tokens == 6 and info.value.context_length == 10


def test_bad_backend_option_fails_before_any_call():
    with pytest.raises(ConfigError, match="Bad options for the 'echo' backend: temprature"):
        echo({"temprature": 1})


def test_calls_are_logged_to_the_store():
    model = echo(log_calls=True, price=Price(input=1.0, output=1.0))
    run(model.generate("a b"))
    with pytest.raises(RateLimitError):
        run(echo({"fail_first": 9}, log_calls=True, retry=RetryPolicy(max_attempts=1)).generate("x"))
    calls = store.recent_calls()
    assert [(c.ok, c.output_tokens) for c in calls] == [(False, 0), (True, 2)]
    assert calls[1].cost_usd == pytest.approx(4 / 1e6)
    assert "simulated rate limit" in calls[0].error


def test_prompt_for_follows_the_mode():
    chat = echo()
    assert [m.role for m in chat.prompt_for("hi", system="be brief")] == ["system", "user"]
    base = load_model(ModelRecord(id="test/base", backend="echo", mode="completion"))
    assert base.prompt_for("hi", system="intro") == "intro\n\nhi"
    emb = load_model(ModelRecord(id="test/emb", backend="echo", mode="embedding"))
    with pytest.raises(ConfigError, match="embedding model"):
        emb.prompt_for("hi")


def test_embeddings_and_loglikelihood_through_the_wrapper():
    model = echo({"responses": {"2+2=": "4"}})
    vectors = run(model.embed(["a", "b", "a"]))
    assert len(vectors.vectors) == 3 and vectors.vectors[0] == vectors.vectors[2]
    good = run(model.loglikelihood("2+2=", "4"))
    bad = run(model.loglikelihood("2+2=", "5"))
    assert good.is_greedy and not bad.is_greedy and good.logprob > bad.logprob


def test_the_cache_takes_the_same_key_from_many_threads_at_once():
    """Two items with the same prompt finish together: both stores succeed (no UNIQUE error)."""
    import concurrent.futures

    from modelatlas.backends.cache import StoreCache
    from modelatlas.types import Completion

    cache = StoreCache()
    answers = [Completion(text=str(i), model="m") for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: cache.put("same-key", "m", c), answers))
    assert cache.get("same-key").text in {a.text for a in answers}
