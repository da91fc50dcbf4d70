"""Serving a hosted model as a gateway: requests forward to its provider with the provider key
from the environment. The provider here is llama.cpp's own server on 127.0.0.1, requiring a key."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.servers import free_port, python_server

openai = pytest.importorskip("openai")
pytest.importorskip("sse_starlette", reason="needs llama-cpp-python[server]")

HOSTED = "gw/smollm2"
KEY_ENV = "MODELATLAS_TEST_GATEWAY_KEY"
SECRET = "gateway-test-secret"


def home_env(folder, **extra) -> dict[str, str]:
    env = {**os.environ, "MODELATLAS_HOME": str(folder / "home"), **extra}
    env.pop("MODELATLAS_DATABASE_URL", None)
    if KEY_ENV not in extra:
        env.pop(KEY_ENV, None)
    return env


@pytest.fixture(scope="module")
def provider(smollm2_path, tmp_path_factory):
    """The 'provider': an OpenAI-compatible server that refuses requests without our key."""
    port = free_port()
    args = ["-m", "llama_cpp.server", "--model", smollm2_path, "--model_alias", "smollm2"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"]
    args += ["--api_key", SECRET, "--verbose", "False"]
    log = str(tmp_path_factory.mktemp("provider") / "server.log")
    with python_server(args, port, ready_path="/v1/models", log_path=log):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def folder(provider, tmp_path_factory):
    """A home where the hosted model is registered, as `modelatlas catalog add` does it."""
    folder = tmp_path_factory.mktemp("gateway")
    records = folder / "hosted.yaml"
    records.write_text(
        f"- id: {HOSTED}\n  backend: openai\n  mode: chat\n  hosting: hosted\n  context_length: 2048\n"
        f"  price: {{input: 1.0, output: 2.0}}\n"
        f"  options: {{base_url: '{provider}', model: smollm2, api_key_env: {KEY_ENV}}}\n"
    )
    add = [sys.executable, "-m", "modelatlas", "catalog", "add", str(records)]
    subprocess.run(add, env=home_env(folder), check=True, capture_output=True, timeout=120)
    return folder


def serve_args(port: int, *models: str) -> list[str]:
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--no-auth"]
    for model in models:
        args += ["--model", model]
    return args


@pytest.fixture(scope="module")
def server(folder):
    port = free_port()
    env = home_env(folder, **{KEY_ENV: SECRET})
    log = str(folder / "server.log")
    with python_server(serve_args(port, HOSTED), port, ready_path="/health", log_path=log, env=env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def ask(text: str = "Say hello.") -> list[dict]:
    return [{"role": "user", "content": text}]


def test_chat_is_forwarded_and_answered_in_our_shape(client, server, provider):
    unkeyed = httpx.post(f"{provider}/chat/completions", json={"model": "smollm2", "messages": ask()})
    assert unkeyed.status_code == 401  # so an answer below means our server sent the key
    answer = client.chat.completions.create(model=HOSTED, messages=ask(), max_tokens=8, temperature=0)
    assert answer.object == "chat.completion"
    assert answer.model == HOSTED
    assert answer.id.startswith("chatcmpl-")
    assert answer.choices[0].message.content
    assert answer.usage.prompt_tokens > 0 and 0 < answer.usage.completion_tokens <= 8
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert HOSTED in httpx.get(f"{server}/health").json()["loaded"]


def test_stream_is_forwarded_with_usage(client):
    stream = client.chat.completions.create(
        model=HOSTED,
        messages=ask("Count from one to ten."),
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.model == HOSTED for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 10


def test_legacy_completions_are_forwarded(client):
    answer = client.completions.create(model=HOSTED, prompt="One, two, three,", max_tokens=4, temperature=0)
    assert answer.object == "text_completion" and answer.model == HOSTED
    assert answer.choices[0].text
    assert answer.usage.completion_tokens > 0


def test_echo_and_logprobs_are_refused_for_a_hosted_model(server):
    body = {"model": HOSTED, "prompt": "hi", "echo": True, "max_tokens": 0, "logprobs": 1}
    response = httpx.post(f"{server}/v1/completions", json=body)
    assert response.status_code == 400
    assert "'echo'" in response.json()["error"]["message"]


def test_a_missing_provider_key_fails_at_start(folder):
    port = free_port()
    done = subprocess.run(
        [sys.executable, *serve_args(port, HOSTED)],
        env=home_env(folder),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert KEY_ENV in done.stdout + done.stderr


def test_a_missing_provider_key_is_an_error_envelope_at_request_time(folder):
    """Served by default (every runnable model), the hosted model fails when it is called."""
    port = free_port()
    log = str(folder / "default-server.log")
    with python_server(serve_args(port), port, ready_path="/health", log_path=log, env=home_env(folder)):
        url = f"http://127.0.0.1:{port}"
        assert HOSTED in httpx.get(f"{url}/health").json()["models"]
        response = httpx.post(f"{url}/v1/chat/completions", json={"model": HOSTED, "messages": ask()})
    assert response.status_code == 502
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert KEY_ENV in error["message"]
    assert SECRET not in response.text
