"""Honest refusals on a real `modelatlas serve` with a key: a model asked on an endpoint it
would answer with junk gets a 400 naming the endpoint to use; embeddings take token ids, refuse
input longer than the window unless ``truncate`` is asked, and refuse ``dimensions`` for a model
whose vectors have one size. ``--allow-chat-on-base`` lets a base model chat deliberately."""

from __future__ import annotations

import math
import subprocess
import sys

import httpx
import pytest

from tests.servers import home_env, modelatlas_serve, new_key

openai = pytest.importorskip("openai")

CHAT = "local/smollm2-135m-instruct"
BASE = "local/gemma-3-270m"  # mode completion
EMBED = "local/all-minilm-l6-v2"  # a window of 256 tokens
HOSTED = "openai/gpt-refusal-test"  # a chat model on OpenAI's own API: chat only
GGUF_EMBED = "test/smollm2-embeddings"  # SmolLM2's GGUF as a llama.cpp embedding model (window 512)
KEY_ENV = "MODELATLAS_TEST_UNUSED_KEY"  # set, never sent: the requests are refused first
AUTH: dict[str, str] = {}
LONG = "word " * 300  # 302 tokens with [CLS] and [SEP]


def refusals_env(folder) -> dict[str, str]:
    env = home_env(folder / "home", **{KEY_ENV: "sk-unused"})
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # were anything sent, it would stay here
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory, smollm2_path):
    folder = tmp_path_factory.mktemp("refusals")
    env = refusals_env(folder)
    records = folder / "hosted.yaml"
    records.write_text(
        f"- id: {HOSTED}\n  backend: openai\n  mode: chat\n  options: {{api_key_env: {KEY_ENV}}}\n"
        f"- id: {GGUF_EMBED}\n  backend: llamacpp\n  mode: embedding\n  location: {smollm2_path}\n"
    )
    run = {"env": env, "capture_output": True, "text": True, "check": True, "timeout": 120}
    subprocess.run([sys.executable, "-m", "modelatlas", "catalog", "add", str(records)], **run)
    AUTH["Authorization"] = f"Bearer {new_key(folder / 'home', 't')}"
    args = ["--parallel", "1"]
    for model in (CHAT, BASE, EMBED, HOSTED, GGUF_EMBED):
        args += ["--model", model]
    with modelatlas_serve(folder, args, env) as base:
        yield base


def post(server: str, path: str, **body) -> httpx.Response:
    return httpx.post(f"{server}{path}", json=body, headers=AUTH, timeout=120)


def refusal(response: httpx.Response, param: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", error
    return error["message"]


def embed(server: str, model: str = EMBED, **body) -> list[list[float]]:
    response = post(server, "/v1/embeddings", model=model, **body)
    assert response.status_code == 200, response.text
    return [d["embedding"] for d in response.json()["data"]]


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(a, b))


def ask() -> list[dict]:
    return [{"role": "user", "content": "Say hello."}]


def test_embeddings_on_a_chat_model_point_to_chat(server):
    message = refusal(post(server, "/v1/embeddings", model=CHAT, input="hello"), "model")
    assert "not an embedding model" in message and "/v1/chat/completions" in message


def test_embeddings_on_a_base_model_point_to_completions(server):
    message = refusal(post(server, "/v1/embeddings", model=BASE, input="hello"), "model")
    assert "/v1/completions" in message


def test_chat_on_a_base_model_points_to_completions_and_the_flag(server):
    message = refusal(post(server, "/v1/chat/completions", model=BASE, messages=ask(), max_tokens=4), "model")
    assert "base model" in message and "/v1/completions" in message and "--allow-chat-on-base" in message


def test_completions_on_a_chat_only_hosted_model_point_to_chat(server):
    response = post(server, "/v1/completions", model=HOSTED, prompt="One, two,", max_tokens=4)
    assert "/v1/chat/completions" in refusal(response, "model")


def test_the_refusals_come_through_the_openai_sdk(server):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=AUTH["Authorization"].split()[1], max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=CHAT, input="hello")
    assert caught.value.body["param"] == "model"


def test_token_ids_embed_as_their_text(server):
    ids = post(server, "/tokenize", model=EMBED, prompt="The cat sat on the mat.").json()["tokens"]
    by_text, other = embed(server, input=["The cat sat on the mat.", "A dog barked."])
    (by_ids,) = embed(server, input=ids)
    assert close(by_ids, by_text) and not close(by_ids, other)
    both = embed(server, input=[ids, ids[:3] + ids[-1:]])
    assert close(both[0], by_text) and len(both) == 2


def test_input_longer_than_the_window_is_refused_naming_it(server):
    message = refusal(post(server, "/v1/embeddings", model=EMBED, input=["short", LONG]), "input[1]")
    assert "302 tokens" in message and "256" in message and "truncate" in message
    ids = post(server, "/tokenize", model=EMBED, prompt=LONG).json()["tokens"]
    refusal(post(server, "/v1/embeddings", model=EMBED, input=[ids]), "input[0]")


def test_truncate_embeds_the_first_tokens(server):
    ids = post(server, "/tokenize", model=EMBED, prompt=LONG).json()["tokens"]
    (cut,) = embed(server, input=LONG, truncate=True)
    (first,) = embed(server, input=ids[:255] + ids[-1:])  # the tokenizer keeps the closing [SEP]
    assert close(cut, first)
    (cut_ids,) = embed(server, input=ids, truncate=True)
    (head,) = embed(server, input=ids[:256])
    assert close(cut_ids, head)


def test_dimensions_is_refused_for_a_model_without_shortened_embeddings(server):
    message = refusal(post(server, "/v1/embeddings", model=EMBED, input="hello", dimensions=64), "dimensions")
    assert "does not support shortened embeddings" in message
    wrong = post(server, "/v1/embeddings", model=EMBED, input="hello", dimensions="64")
    assert refusal(wrong, "dimensions")


def test_foreign_token_ids_are_refused(server):
    response = post(server, "/v1/embeddings", model=EMBED, input=[[101, 10**6, 102]])
    refusal(response, "input[0][1]")


@pytest.fixture(scope="module")
def lenient(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lenient")
    args = ["--no-auth", "--allow-chat-on-base", "--model", BASE, "--parallel", "1"]
    with modelatlas_serve(folder, args, refusals_env(folder)) as base:
        yield base


def test_the_flag_lets_a_base_model_chat(lenient):
    response = httpx.post(
        f"{lenient}/v1/chat/completions",
        json={"model": BASE, "messages": ask(), "max_tokens": 4, "temperature": 0},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] > 0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, server):
    """A second server whose embedding model is the first server's all-MiniLM, reached through
    the openai backend: what it passes on (token ids, dimensions) reaches the first one."""
    folder = tmp_path_factory.mktemp("gateway")
    env = refusals_env(folder)
    records = folder / "gateway.yaml"
    options = f"{{base_url: '{server}/v1', model: {EMBED}, api_key_env: GATEWAY_KEY}}"
    records.write_text(f"- id: peer/minilm\n  backend: openai\n  mode: embedding\n  options: {options}\n")
    add = [sys.executable, "-m", "modelatlas", "catalog", "add", str(records)]
    subprocess.run(add, env=env, capture_output=True, check=True, timeout=120)
    env["GATEWAY_KEY"] = AUTH["Authorization"].split()[1]
    with modelatlas_serve(folder, ["--no-auth", "--model", "peer/minilm"], env) as base:
        yield base


def test_the_openai_backend_passes_token_ids_and_dimensions_on(server, gateway):
    ids = post(server, "/tokenize", model=EMBED, prompt="The cat sat.").json()["tokens"]
    through = httpx.post(f"{gateway}/v1/embeddings", json={"model": "peer/minilm", "input": ids}, timeout=120)
    assert through.status_code == 200, through.text
    assert close(through.json()["data"][0]["embedding"], embed(server, input="The cat sat.")[0])
    shortened = {"model": "peer/minilm", "input": "hello", "dimensions": 64}
    refused = httpx.post(f"{gateway}/v1/embeddings", json=shortened, timeout=120)
    assert refused.status_code == 400 and "shortened embeddings" in refused.json()["error"]["message"]
    cut = {"model": "peer/minilm", "input": "hello", "truncate": True}
    assert refusal(httpx.post(f"{gateway}/v1/embeddings", json=cut, timeout=120), "truncate")


def test_a_llama_cpp_embedding_model_takes_token_ids_and_its_window(server):
    text = "The cat sat on the mat."
    ids = post(server, "/tokenize", model=GGUF_EMBED, prompt=text).json()["tokens"]
    (by_text,) = embed(server, input=text, model=GGUF_EMBED)
    (by_ids,) = embed(server, input=ids, model=GGUF_EMBED)
    assert close(by_ids, by_text)
    special = post(server, "/tokenize", model=GGUF_EMBED, prompt="<|im_start|>user").json()["tokens"]
    message = refusal(post(server, "/v1/embeddings", model=GGUF_EMBED, input=special), "input[0]")
    assert "same ids" in message  # llama.cpp embeds text: these ids do not come back from theirs
    long = "word " * 600
    message = refusal(post(server, "/v1/embeddings", model=GGUF_EMBED, input=long), "input[0]")
    assert "more than the 512 tokens" in message
    assert len(embed(server, input=long, model=GGUF_EMBED, truncate=True)[0]) == len(by_text)
