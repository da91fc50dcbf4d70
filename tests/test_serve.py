"""`modelatlas serve` as a real subprocess on 127.0.0.1, called with the official openai SDK."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import modelatlas_serve, new_key

openai = pytest.importorskip("openai")

CHAT = "local/smollm2-135m-instruct"
BASE = "local/gemma-3-270m"
EMBED = "local/all-minilm-l6-v2"
AUTH: dict[str, str] = {}


def post(url: str, headers: dict | None = None, **kwargs) -> httpx.Response:
    return httpx.post(url, headers={**AUTH, **(headers or {})}, timeout=60, **kwargs)


def get(url: str, **kwargs) -> httpx.Response:
    return httpx.get(url, headers=AUTH, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    args = []
    for model in (CHAT, BASE, EMBED):
        args += ["--model", model]
    secret = new_key(folder / "home", "tests")
    AUTH["Authorization"] = f"Bearer {secret}"
    with modelatlas_serve(folder, args) as base:
        yield base


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=AUTH["Authorization"].split()[1], max_retries=0)


def ask(text: str = "Say hello.") -> list[dict]:
    return [{"role": "user", "content": text}]


def test_chat_completion(client):
    answer = client.chat.completions.create(model=CHAT, messages=ask(), max_tokens=8, temperature=0)
    assert answer.object == "chat.completion"
    assert answer.model == CHAT
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_chat_stream_with_usage(client):
    stream = client.chat.completions.create(
        model=CHAT,
        messages=ask("Count from one to ten."),
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 2
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 12 or chunks[-2].choices[0].finish_reason == "stop"
    assert 0 < last.usage.completion_tokens <= 12
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_completions_on_a_base_model(client):
    answer = client.completions.create(
        model=BASE, prompt="The capital of France is", max_tokens=5, temperature=0
    )
    assert answer.object == "text_completion"
    assert answer.choices[0].text
    assert answer.usage.completion_tokens > 0


def test_completions_stream(client):
    chunks = list(client.completions.create(model=BASE, prompt="One, two,", max_tokens=6, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_embeddings(client):
    result = client.embeddings.create(model=EMBED, input=["hello world", "goodbye"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 384
    assert result.usage.prompt_tokens > 0
    floats = post(f"{client.base_url}embeddings", json={"model": EMBED, "input": "hi"}).json()
    assert len(floats["data"][0]["embedding"]) == 384


def test_models_lists_the_served_ones(client):
    ids = [m.id for m in client.models.list()]
    assert ids == [CHAT, BASE, EMBED]


def test_health_and_openapi(server):
    assert get(f"{server}/health").json()["status"] == "ok"
    paths = get(f"{server}/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"} <= set(paths)


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_unknown_model_is_404_with_did_you_mean(server):
    response = post(
        f"{server}/v1/chat/completions", json={"model": "local/smollm2-135m-instruc", "messages": ask()}
    )
    assert response.status_code == 404
    error = error_of(response)
    assert "Did you mean" in error["message"] and CHAT in error["message"]
    assert error["code"] == "model_not_found"


def test_the_sdk_raises_not_found(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="local/nope", messages=ask())


def test_malformed_json_is_400(server):
    response = post(
        f"{server}/v1/chat/completions", content=b'{"model": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "JSON" in error_of(response)["message"]


def test_wrong_type_is_400_naming_the_parameter(server):
    body = {"model": CHAT, "messages": ask(), "max_tokens": "ten"}
    response = post(f"{server}/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "max_tokens"
    assert "max_tokens" in error["message"] and "pydantic" not in error["message"]
    numeric_string = post(f"{server}/v1/chat/completions", json={**body, "max_tokens": "5"})
    assert numeric_string.status_code == 400


def test_bad_nested_field_and_missing_field(server):
    response = post(
        f"{server}/v1/chat/completions", json={"model": CHAT, "messages": [{"role": "user", "content": 5}]}
    )
    assert response.status_code == 400
    assert error_of(response)["param"] == "messages[0].content"
    missing = post(f"{server}/v1/chat/completions", json={"model": CHAT})
    assert missing.status_code == 400 and error_of(missing)["param"] == "messages"


def test_context_length_exceeded_before_compute(server):
    body = {"model": CHAT, "messages": ask("hello " * 3000), "max_tokens": 100_000}
    for stream in (False, True):
        response = post(f"{server}/v1/chat/completions", json={**body, "stream": stream})
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "context_length_exceeded"
        assert "maximum context length" in error["message"]


def test_text_on_an_embedding_model_is_400(server):
    response = post(f"{server}/v1/chat/completions", json={"model": EMBED, "messages": ask()})
    assert response.status_code == 400


def test_a_client_that_leaves_mid_stream_frees_the_server(server, client):
    body = {"model": CHAT, "messages": ask("Write a long story."), "max_tokens": 200, "stream": True}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, headers=AUTH) as response:
        assert response.status_code == 200
        next(response.iter_lines())
    answer = client.chat.completions.create(model=CHAT, messages=ask(), max_tokens=4)
    assert answer.choices[0].message.content is not None
    assert get(f"{server}/health").status_code == 200
