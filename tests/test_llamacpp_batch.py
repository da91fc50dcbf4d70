"""Continuous batching in the llamacpp backend (option ``parallel``), on the bundled SmolLM2."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from modelatlas.backends.llamacpp_batch import sample
from modelatlas.backends.llamacpp_engine import Sampling
from modelatlas.catalog.records import ModelRecord
from modelatlas.loading import load_model
from modelatlas.types import Message
from tests.conftest import run

PROMPTS = {
    "hash": "Explain what a hash table is.",
    "autumn": "Write a short poem about autumn leaves.",
    "copper": "List three uses of copper.",
    "cat": "Why do cats purr?",
}


def _batched(path: str, parallel: int, n_ctx: int):
    record = ModelRecord(
        id=f"file/smol-x{parallel}",
        backend="llamacpp",
        location=path,
        options={"n_ctx": n_ctx, "parallel": parallel},
    )
    return load_model(record, max_concurrency=8)


@pytest.fixture(scope="module")
def smol4(smollm2_path):
    return _batched(smollm2_path, 4, 2048)


@pytest.fixture(scope="module")
def smol2(smollm2_path):
    return _batched(smollm2_path, 2, 1024)


def _chat(text: str) -> list[Message]:
    return [Message.user(text)]


def _active(model) -> int:
    engine = model.backend.engine
    return engine.submit(lambda: len(engine.batcher(model.backend.options.parallel).active)).result()


def test_concurrent_streams_match_each_alone(smol4):
    alone = {k: run(smol4.generate(_chat(p), max_tokens=40)) for k, p in PROMPTS.items()}

    async def together():
        return await asyncio.gather(*(smol4.generate(_chat(p), max_tokens=40) for p in PROMPTS.values()))

    results = dict(zip(PROMPTS, run(together())))
    for key, out in results.items():
        assert out.text == alone[key].text
        assert out.usage == alone[key].usage and out.finish_reason == alone[key].finish_reason
    assert "hash" in results["hash"].text.lower()
    assert "copper" in results["copper"].text.lower()
    assert all(len(r.text.split()) >= 5 for r in results.values())


def test_streamed_chunks_add_up_to_the_answer(smol4):
    async def both():
        chunks = [c async for c in smol4.stream(_chat(PROMPTS["cat"]), max_tokens=30)]
        whole = await smol4.generate(_chat(PROMPTS["cat"]), max_tokens=30)
        return chunks, whole

    chunks, whole = run(both())
    assert len([c for c in chunks if c.text]) >= 2
    assert "".join(c.text for c in chunks if c.text) == whole.text
    assert chunks[-1].usage.output_tokens == whole.usage.output_tokens
    assert chunks[-1].timing.ttft_s is not None


def test_output_tokens_are_the_tokens_generated(smol4):
    prompt = _chat(PROMPTS["hash"])
    longer = run(smol4.generate(prompt, max_tokens=24))
    for n in (1, 5, 12):
        out = run(smol4.generate(prompt, max_tokens=n))
        assert out.usage.output_tokens == n and out.finish_reason == "length"
        assert longer.text.startswith(out.text)
    assert longer.usage.input_tokens == out.usage.input_tokens > 5


def test_stop_string_and_max_tokens_while_others_run(smol4):
    async def both():
        return await asyncio.gather(
            smol4.generate("1, 2, 3, 4, 5,", max_tokens=40, stop=(" 8",)),
            smol4.generate(_chat(PROMPTS["autumn"]), max_tokens=17),
        )

    counted, poem = run(both())
    assert " 8" not in counted.text and "7" in counted.text and counted.finish_reason == "stop"
    assert poem.usage.output_tokens == 17 and poem.finish_reason == "length"


def test_more_requests_than_slots_wait_and_all_complete(smol2):
    prompts = [_chat(f"Write a short sentence about the number {n}.") for n in range(5)]
    alone = [run(smol2.generate(p, max_tokens=20)).text for p in prompts]

    async def together():
        return await asyncio.gather(*(smol2.generate(p, max_tokens=20) for p in prompts))

    results = run(together())
    assert [r.text for r in results] == alone
    assert all(r.text.strip() and r.usage.output_tokens > 0 for r in results)
    assert _active(smol2) == 0


def test_cancelled_stream_frees_its_slot_and_the_others_go_on(smol2):
    async def scenario():
        other = asyncio.create_task(smol2.generate(_chat(PROMPTS["hash"]), max_tokens=150))
        async for chunk in smol2.stream(_chat("Tell me a long story."), max_tokens=400):
            if chunk.text:
                break  # the client leaves: its slot must come free
        running = 2
        for _ in range(100):  # the engine thread frees the slot at its next step: wait for it
            running = await asyncio.to_thread(_active, smol2)
            if running <= 1:
                break
            await asyncio.sleep(0.05)
        still = not other.done()
        third = await asyncio.wait_for(smol2.generate(_chat(PROMPTS["cat"]), max_tokens=60), 60)
        return running, still, await other, third

    running, still, other, third = run(scenario())
    assert running == (1 if still else 0)  # the story is gone; the other answer runs on
    assert other.usage.output_tokens > 10 and third.usage.output_tokens > 10
    assert other.text == run(smol2.generate(_chat(PROMPTS["hash"]), max_tokens=150)).text
    assert _active(smol2) == 0


def test_seeded_sampling_is_reproducible_in_a_batch(smol4):
    params = {"max_tokens": 24, "temperature": 0.8, "seed": 7}
    alone = run(smol4.generate(_chat(PROMPTS["autumn"]), **params)).text

    async def together():
        return await asyncio.gather(
            smol4.generate(_chat(PROMPTS["autumn"]), **params),
            smol4.generate(_chat(PROMPTS["copper"]), **params),
        )

    assert run(together())[0].text == alone


def test_sampler_keeps_to_top_p():
    logits = np.array([5.0, 4.0, -10.0, -10.0], dtype=np.float32)
    rng = np.random.default_rng(0)
    greedy = Sampling(8, 0.0, 1.0, (), 0)
    assert sample(logits, greedy, rng) == 0
    nucleus = Sampling(8, 1.0, 0.5, (), 0)
    assert {sample(logits, nucleus, rng) for _ in range(50)} == {0}
    wide = Sampling(8, 1.0, 1.0, (), 0)
    assert {sample(logits, wide, rng) for _ in range(200)} == {0, 1}


def test_parallel_one_keeps_the_unbatched_path(smollm2_path):
    model = _batched(smollm2_path, 1, 512)
    out = run(model.generate(_chat(PROMPTS["copper"]), max_tokens=8))
    assert out.usage.output_tokens == 8
    assert model.backend.engine._batcher is None


def test_sampler_drops_tokens_under_min_p_before_the_temperature():
    """As in llama.cpp's chain: a hot temperature cannot revive a token min-p already dropped."""
    logits = np.zeros(100, dtype=np.float32)
    logits[7] = 10.0  # every other token is e^-10 times less likely: far under 5% of token 7
    rng = np.random.default_rng(0)
    hot = Sampling(max_tokens=1, temperature=2.0, top_p=1.0, stop=(), seed=0)
    assert {sample(logits, hot, rng) for _ in range(200)} == {7}
    logits[3] = 9.5  # 61% as likely as token 7: kept, and drawn sometimes
    assert {sample(logits, hot, rng) for _ in range(200)} == {3, 7}


def _sent_together(model, asks: dict[str, list[Message]], fresh: bool = True) -> dict[str, str]:
    """Each chat's greedy 32-token answer, all sent at once; with ``fresh``, no slot holds a
    cached prompt beforehand."""
    engine = model.backend.engine
    batcher = engine.submit(engine.batcher, 4).result()
    if fresh:
        engine.submit(lambda: (batcher.cached.clear(), batcher.ctx.clear())).result()

    async def together():
        answers = await asyncio.gather(*(model.generate(m, max_tokens=32) for m in asks.values()))
        return {k: a.text for k, a in zip(asks, answers, strict=True)}

    return run(together())


def _unbatched_answers(path: str, asks: dict[str, list[Message]]) -> dict[str, str]:
    """Each chat's greedy 32-token answer from the unbatched engine (llama-cpp-python's Llama)."""
    plain = ModelRecord(id="file/smol-x1", backend="llamacpp", location=path, options={"n_ctx": 2048})
    unbatched = load_model(plain)
    try:
        return {k: run(unbatched.generate(m, max_tokens=32)).text for k, m in asks.items()}
    finally:
        run(unbatched.aclose())


def test_a_shared_prefix_is_decoded_once_and_answers_stay_the_same(smollm2_path, smol4):
    """Prefix caching: requests one after another that share a long system prompt take it from
    a slot's KV cache (the batcher's ``reused`` count grows by about its length each time), and
    their greedy answers equal those of the unbatched engine, which decodes every prompt whole."""
    system = "You answer questions about science and everyday life in two plain sentences. " * 6
    asks = {k: [Message.system(system), Message.user(p)] for k, p in PROMPTS.items()}
    alone = _unbatched_answers(smollm2_path, asks)
    engine = smol4.backend.engine
    batcher = engine.submit(engine.batcher, 4).result()
    before = batcher.reused
    cached = {k: run(smol4.generate(m, max_tokens=32)).text for k, m in asks.items()}
    assert cached == alone
    n_system = smol4.count_tokens(system)
    assert batcher.reused - before >= (len(asks) - 1) * n_system  # every request after the first


def test_requests_sent_together_copy_the_shared_prefix_from_a_running_sequence(smollm2_path, smol4):
    """Four requests with a long shared system prompt sent at once: the first decodes it, the
    others wait a step and take a copy of its KV cache (``llama_memory_seq_cp`` between slots'
    streams) instead of decoding it again; every answer equals the unbatched one."""
    system = "You are a careful tutor who explains one idea at a time, in plain words. " * 6
    asks = {k: [Message.system(system), Message.user(p)] for k, p in PROMPTS.items()}
    alone = _unbatched_answers(smollm2_path, asks)
    engine = smol4.backend.engine
    batcher = engine.submit(engine.batcher, 4).result()
    engine.submit(lambda: (batcher.cached.clear(), batcher.ctx.clear())).result()  # no slot holds it yet
    before = batcher.reused
    assert _sent_together(smol4, asks, fresh=False) == alone
    n_system = smol4.count_tokens(system)
    assert batcher.reused - before >= (len(asks) - 1) * n_system  # copied, not decoded again


def test_long_prompts_give_the_same_answers_together_as_alone(smollm2_path, smol4):
    """Flash attention is on, with ggml's reference kernel on every path. Its other two CPU
    kernels would make this fail: a tiled one for a prompt chunk of 64 tokens or more, and one
    that splits a lone query's 512+ cached cells between threads while a batch of several
    sequences never does. Prompts of about 700 tokens, decoded alone in llama-cpp-python's
    context and four at once in the batcher, greedy answers compared."""
    from modelatlas.backends import llama_adapter

    assert llama_adapter._reference_kernels
    assert smol4.backend.engine.llm.context_params.flash_attn_type == 1  # enabled
    story = (
        "A lighthouse keeper writes in her log each night: the wind, the ships that passed, "
        "the oil she burned and the birds that rested on the rail. "
    ) * 22
    asks = {k: [Message.system(story), Message.user(p)] for k, p in PROMPTS.items()}
    assert smol4.count_tokens(story) > 600
    alone = _unbatched_answers(smollm2_path, asks)
    assert _sent_together(smol4, asks) == alone
