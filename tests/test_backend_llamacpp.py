"""The llamacpp backend on the bundled GGUF models: real generation, no mocks."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ContextLengthExceededError, ModelFileError
from modelatlas.loading import load_model
from modelatlas.types import Message
from tests.conftest import run

SMOL = "local/smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smol():
    return load_model(SMOL, max_concurrency=8)


def test_chat_answers_with_usage(smol):
    out = run(
        smol.generate([Message.system("Answer briefly."), Message.user("Name a colour.")], max_tokens=24)
    )
    assert out.text.strip()
    assert out.usage.input_tokens > 5 and 0 < out.usage.output_tokens <= 24
    assert out.finish_reason in ("stop", "length")
    assert out.usage.cost_usd == 0.0


def test_stream_matches_generate_at_temperature_zero(smol):
    prompt = [Message.user("Write one sentence about cats.")]

    async def both():
        chunks = [c async for c in smol.stream(prompt, max_tokens=30)]
        whole = await smol.generate(prompt, max_tokens=30)
        return chunks, whole

    chunks, whole = run(both())
    pieces = [c.text for c in chunks if c.text]
    assert len(pieces) > 3
    assert "".join(pieces) == whole.text
    assert chunks[-1].usage.output_tokens == whole.usage.output_tokens
    assert chunks[-1].timing.ttft_s is not None


def test_stop_sequence_ends_the_answer(smol):
    out = run(smol.generate("1, 2, 3, 4, 5,", max_tokens=40, stop=(" 8",)))
    assert " 8" not in out.text and out.finish_reason == "stop"
    assert "7" in out.text


def test_loglikelihood_prefers_the_likely_continuation(smol):
    paris = run(smol.loglikelihood("The capital of France is", " Paris"))
    banana = run(smol.loglikelihood("The capital of France is", " banana"))
    assert paris.logprob > banana.logprob
    assert paris.is_greedy and not banana.is_greedy
    assert paris.tokens >= 1 and paris.logprob < 0


def test_generation_after_loglikelihood_is_unchanged(smol):
    prompt = [Message.user("Say hello.")]
    before = run(smol.generate(prompt, max_tokens=12)).text
    run(smol.loglikelihood("Hello there, my", " friend"))
    assert run(smol.generate(prompt, max_tokens=12)).text == before


def test_eight_concurrent_callers_each_get_their_own_complete_answer(smol):
    prompts = [[Message.user(f"Write a short sentence about the number {n}.")] for n in range(8)]
    alone = [run(smol.generate(p, max_tokens=24)).text for p in prompts]

    async def together():
        return await asyncio.gather(*(smol.generate(p, max_tokens=24) for p in prompts))

    results = run(together())
    assert [r.text for r in results] == alone
    assert all(r.text.strip() and r.usage.output_tokens > 0 for r in results)


def test_abandoned_stream_frees_the_model(smol):
    async def abandon_then_ask():
        async for chunk in smol.stream([Message.user("Tell me a long story.")], max_tokens=200):
            if chunk.text:
                break
        return await asyncio.wait_for(smol.generate("Hi", max_tokens=4), timeout=30)

    assert run(abandon_then_ask()).usage.output_tokens > 0


def test_prompt_longer_than_context_fails_before_generation(smollm2_path):
    model = load_model(
        ModelRecord(id="file/smol-64", backend="llamacpp", location=smollm2_path, options={"n_ctx": 64})
    )
    with pytest.raises(ContextLengthExceededError) as info:
        run(model.generate("word " * 80, max_tokens=16))
    assert info.value.context_length == 64 and info.value.prompt_tokens > 64


def test_base_model_completes_plain_text():
    gemma = load_model("local/gemma-3-270m")
    assert gemma.record.mode == "completion"
    out = run(gemma.generate("The first three letters of the alphabet are", max_tokens=12))
    assert out.text.strip() and out.usage.input_tokens > 3


def test_count_tokens_is_exact(smol):
    assert smol.count_tokens("hello") == 1
    assert smol.count_tokens("hello world, how are you?") > 3


def test_gguf_embeddings_are_normalised(smollm2_path):
    model = load_model(
        ModelRecord(
            id="file/smol-embed",
            backend="llamacpp",
            location=smollm2_path,
            mode="embedding",
            options={"n_ctx": 256},
        )
    )
    out = run(model.embed(["a cat", "a dog"]))
    assert len(out.vectors) == 2 and len(out.vectors[0]) == 576
    assert sum(x * x for x in out.vectors[0]) == pytest.approx(1.0, abs=1e-3)


def _load_in_subprocess(path) -> subprocess.CompletedProcess:
    code = (
        "import asyncio, sys\n"
        "from modelatlas.loading import load_model\n"
        "from modelatlas.catalog.records import ModelRecord\n"
        "from modelatlas.errors import ModelFileError\n"
        f"m = load_model(ModelRecord(id='file/bad', backend='llamacpp', location={str(path)!r}))\n"
        "try:\n"
        "    asyncio.run(m.generate('hi', max_tokens=2))\n"
        "except ModelFileError as e:\n"
        "    print('MODELFILEERROR', e); sys.exit(3)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("content", [b"", b"not a gguf file at all" * 10, "truncated"])
def test_corrupt_gguf_gives_a_clear_error_not_a_crash(tmp_path, smollm2_path, content):
    bad = tmp_path / "bad.gguf"
    if content == "truncated":
        with open(smollm2_path, "rb") as f:
            content = f.read(2_000_000)
    bad.write_bytes(content)
    done = _load_in_subprocess(bad)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "MODELFILEERROR" in done.stdout and str(bad) in done.stdout


def test_missing_file_is_a_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="No GGUF file"):
        model = load_model(ModelRecord(id="file/none", backend="llamacpp", location=str(tmp_path / "x.gguf")))
        run(model.generate("hi"))
