"""POST /v1/completions with echo and logprobs (OpenAI's legacy shape), as log-likelihood
evaluation tools such as lm-evaluation-harness ``local-completions`` call it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from tests.servers import free_port, python_server

openai = pytest.importorskip("openai")

BASE = "local/gemma-3-270m"  # its tokenizer adds BOS
CHAT = "local/smollm2-135m-instruct"  # its tokenizer does not
ECHO = "test/echo"  # a backend without token log-probabilities
CONTEXT, CONTINUATION = "The capital of France is", " Paris"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logprobs")
    env = {**os.environ, "MODELATLAS_HOME": str(folder / "home")}
    env.pop("MODELATLAS_DATABASE_URL", None)
    records = folder / "echo.yaml"
    records.write_text(f"- id: {ECHO}\n  backend: echo\n  mode: completion\n")
    add = [sys.executable, "-m", "modelatlas", "catalog", "add", str(records)]
    subprocess.run(add, env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--no-auth"]
    args += ["--model", BASE, "--model", CHAT, "--model", ECHO]
    with python_server(args, port, ready_path="/health", log_path=str(folder / "server.log"), env=env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def post(server: str, **body) -> httpx.Response:
    return httpx.post(f"{server}/v1/completions", json=body, timeout=120)


def scored(server: str, model: str, prompt, **extra) -> dict:
    body = {"model": model, "prompt": prompt, "echo": True, "max_tokens": 0, "logprobs": 1, **extra}
    response = post(server, **body)
    assert response.status_code == 200, response.text
    return response.json()


def loglikelihood(model_id: str, context: str, continuation: str):
    from modelatlas.loading import load_model

    async def run():
        model = load_model(model_id)
        try:
            return await model.loglikelihood(context, continuation)
        finally:
            await model.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("model", [BASE, CHAT])
def test_echo_scores_the_prompt(server, model):
    answer = scored(server, model, CONTEXT + CONTINUATION)
    choice = choice_of(answer)
    assert choice["text"] == CONTEXT + CONTINUATION
    logprobs = choice["logprobs"]
    assert set(logprobs) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
    tokens, offsets = logprobs["tokens"], logprobs["text_offset"]
    assert "".join(tokens) == CONTEXT + CONTINUATION
    assert offsets == [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
    assert all(lp < 0 for lp in logprobs["token_logprobs"][1:])
    assert all(len(top) == 1 for top in logprobs["top_logprobs"][1:])
    assert answer["usage"]["completion_tokens"] == 0
    assert answer["usage"]["prompt_tokens"] >= len(tokens)


def choice_of(answer: dict) -> dict:
    assert len(answer["choices"]) == 1
    return answer["choices"][0]


@pytest.mark.parametrize("model", [BASE, CHAT])
def test_continuation_logprobs_sum_to_our_loglikelihood(server, model):
    logprobs = choice_of(scored(server, model, CONTEXT + CONTINUATION))["logprobs"]
    picked = [i for i, offset in enumerate(logprobs["text_offset"]) if offset >= len(CONTEXT)]
    assert picked and "".join(logprobs["tokens"][i] for i in picked) == CONTINUATION
    total = sum(logprobs["token_logprobs"][i] for i in picked)
    expected = loglikelihood(model, CONTEXT, CONTINUATION)
    assert total == pytest.approx(expected.logprob, abs=1e-3)
    greedy = all(
        logprobs["token_logprobs"][i] >= max(logprobs["top_logprobs"][i].values()) - 1e-9 for i in picked
    )
    assert greedy == expected.is_greedy


def test_lm_eval_style_request(server):
    """lm-eval sends a list of prompts, max_tokens 1 and reads token_logprobs[ctxlen:-1]."""
    text = scored(server, BASE, CONTEXT + CONTINUATION)
    answer = scored(server, BASE, [CONTEXT + CONTINUATION], max_tokens=1, temperature=0)
    logprobs = choice_of(answer)["logprobs"]
    n = len(text["choices"][0]["logprobs"]["tokens"])
    assert len(logprobs["token_logprobs"]) == n + 1  # the prompt's tokens, then the generated one
    assert logprobs["token_logprobs"][:n] == pytest.approx(text["choices"][0]["logprobs"]["token_logprobs"])
    assert answer["usage"]["completion_tokens"] == 1
    assert choice_of(answer)["text"].startswith(CONTEXT + CONTINUATION)


def test_prompts_as_token_ids(server):
    from modelatlas.loading import load_model

    backend = load_model(BASE).backend
    ids = backend.engine.text_tokens(CONTEXT + CONTINUATION)[1:]  # without BOS, which is added
    asyncio.run(backend.aclose())
    by_text = scored(server, BASE, CONTEXT + CONTINUATION)["choices"][0]["logprobs"]
    by_ids = scored(server, BASE, [ids, ids[:3]])
    assert [c["index"] for c in by_ids["choices"]] == [0, 1]
    assert by_ids["choices"][0]["logprobs"]["token_logprobs"][1:] == pytest.approx(
        by_text["token_logprobs"][1:]
    )
    assert by_ids["choices"][0]["text"] == CONTEXT + CONTINUATION
    assert len(by_ids["choices"][1]["logprobs"]["tokens"]) == 3


def test_logprobs_of_generated_tokens(client):
    answer = client.completions.create(model=BASE, prompt=CONTEXT, max_tokens=6, temperature=0, logprobs=3)
    choice = answer.choices[0]
    logprobs = choice.logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == answer.usage.completion_tokens
    assert "".join(logprobs.tokens) == choice.text
    assert logprobs.text_offset[0] == len(CONTEXT)
    for token, logprob, top in zip(
        logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True
    ):
        assert len(top) == 3
        assert logprob == pytest.approx(max(top.values()))  # greedy: the likeliest token
        assert top[token] == pytest.approx(logprob)


def test_echo_with_generation(client):
    answer = client.completions.create(model=CHAT, prompt=CONTEXT, max_tokens=3, temperature=0, echo=True)
    assert answer.choices[0].text.startswith(CONTEXT)
    assert len(answer.choices[0].text) > len(CONTEXT)
    assert answer.choices[0].logprobs is None


def test_several_text_prompts_without_logprobs(client):
    answer = client.completions.create(model=CHAT, prompt=["One, two,", "A, B,"], max_tokens=3, temperature=0)
    assert [c.index for c in answer.choices] == [0, 1]
    assert all(c.text for c in answer.choices)


def error_of(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["message"]


def test_backends_without_token_logprobs_answer_400(server):
    assert "'echo'" in error_of(post(server, model=ECHO, prompt="hi", echo=True, max_tokens=0))
    assert "'logprobs'" in error_of(post(server, model=ECHO, prompt="hi", logprobs=1, max_tokens=2))
    assert "token ids" in error_of(post(server, model=ECHO, prompt=[1, 2, 3], max_tokens=2))


def test_bad_combinations_answer_400(server):
    assert "'max_tokens'" in error_of(post(server, model=BASE, prompt="hi", max_tokens=0))
    assert "'logprobs'" in error_of(post(server, model=BASE, prompt="hi", logprobs=1, stream=True))
    assert "'logprobs'" in error_of(post(server, model=BASE, prompt="hi", logprobs=9))
    assert "'prompt'" in error_of(post(server, model=BASE, prompt=[10**9], echo=True, max_tokens=0))
    assert "maximum context length" in error_of(
        post(server, model=CHAT, prompt="hi " * 9000, echo=True, max_tokens=0)
    )


def test_tokens_longer_than_32_bytes_keep_their_text(server):
    """SmolLM2 has single tokens for a newline and 80 spaces (81 bytes)."""
    code = "def f():\n" + " " * 80 + "return 1"
    logprobs = choice_of(scored(server, CHAT, code))["logprobs"]
    assert "".join(logprobs["tokens"]) == code
    assert max(len(t) for t in logprobs["tokens"]) > 32


def test_token_logprobs_go_through_the_model_wrapper():
    """Timing, cost and the call log cover scored completions too."""
    from modelatlas.loading import load_model

    calls = []
    model = load_model(BASE)
    model.on_call = calls.append

    async def score():
        try:
            return await model.token_logprobs("The sky is", None, top=2, echo=True)
        finally:
            await model.aclose()

    scored = asyncio.run(score())
    assert scored.prompt == "The sky is" and scored.token_logprobs[0] is None
    assert [c.kind for c in calls] == ["logprobs"] and calls[0].ok
    assert calls[0].usage.input_tokens == scored.usage.input_tokens > 0
