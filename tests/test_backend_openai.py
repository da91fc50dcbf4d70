"""The OpenAI-compatible backend against real servers on 127.0.0.1.

``python -m llama_cpp.server`` with the bundled SmolLM2 is the real peer; a small standard-library
HTTP server that speaks just enough of OpenAI's API covers what llama.cpp cannot show on demand:
429 with Retry-After, refused keys, Azure's URL layout, streamed usage and embeddings.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest

from modelatlas.backends.openai_compat import retry_after
from modelatlas.backends.retry import RetryPolicy
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import (
    BackendError,
    ConfigError,
    ContextLengthExceededError,
    MissingAPIKeyError,
    RateLimitError,
    TransientError,
)
from modelatlas.loading import load_model
from modelatlas.types import GenerationParams, Message
from tests.conftest import needs, run
from tests.servers import free_port

HELLO = [Message.user("Say hello in one short sentence.")]


def record(model_id: str = "fake/gpt-test", **options) -> ModelRecord:
    return ModelRecord(id=model_id, backend="openai", options=options)


async def collect(model, prompt, **params):
    return [chunk async for chunk in model.stream(prompt, **params)]


# -- llama.cpp's OpenAI-compatible server, the real peer -------------------------------------


@pytest.fixture
def smollm2(llama_url):
    model = load_model(record("llamacpp-server/smollm2", base_url=llama_url, model="smollm2"))
    yield model
    run(model.aclose())


@pytest.mark.slow
@needs("llama_cpp")
def test_chat_generate_against_llama_server(smollm2):
    out = run(smollm2.generate(HELLO, max_tokens=16))
    assert out.text.strip()
    assert out.model == "llamacpp-server/smollm2"
    assert out.usage.input_tokens > 0 and out.usage.output_tokens > 0
    assert out.timing.latency_s > 0 and out.timing.ttft_s is not None


@pytest.mark.slow
@needs("llama_cpp")
def test_backend_generate_reports_the_servers_usage(smollm2):
    # Without streaming, llama.cpp's server counts the tokens itself.
    out = run(smollm2.backend.generate(HELLO, GenerationParams(max_tokens=8)))
    assert out.text.strip()
    assert out.finish_reason in ("stop", "length")
    assert out.usage.input_tokens > 5 and 0 < out.usage.output_tokens <= 8


@pytest.mark.slow
@needs("llama_cpp")
def test_stream_against_llama_server(smollm2):
    chunks = run(collect(smollm2, HELLO, max_tokens=24))
    texts = [c.text for c in chunks if c.text]
    last = chunks[-1]
    assert len(texts) >= 3
    assert last.finish_reason in ("stop", "length") and not last.text
    # llama-cpp-python's server ignores stream_options.include_usage, so this usage is the
    # backend's estimate (one token per text delta); the fake server below checks server usage.
    assert last.usage.input_tokens > 0 and last.usage.output_tokens > 0
    assert last.timing.ttft_s is not None


@pytest.mark.slow
@needs("llama_cpp")
def test_plain_string_completion_against_llama_server(smollm2):
    out = run(smollm2.generate("The capital of France is", max_tokens=8))
    assert out.text.strip()
    direct = run(smollm2.backend.generate("The capital of France is", GenerationParams(max_tokens=4)))
    assert direct.finish_reason == "length" and direct.usage.output_tokens == 4
    chunks = run(collect(smollm2, "Once upon a time", max_tokens=8))
    assert len([c for c in chunks if c.text]) >= 2 and chunks[-1].finish_reason == "length"


@pytest.mark.slow
@needs("llama_cpp")
def test_stop_and_context_overflow_against_llama_server(smollm2):
    out = run(smollm2.backend.generate("1, 2, 3, 4,", GenerationParams(max_tokens=20, stop=(" 6",))))
    assert " 6" not in out.text
    too_long = [Message.user("hello " * 2100)]
    with pytest.raises(ContextLengthExceededError) as err:
        run(smollm2.backend.generate(too_long, GenerationParams(max_tokens=8)))
    assert err.value.context_length == 2048 and err.value.prompt_tokens > 2048
    # Streaming, the server answers 200 and then closes the stream without a finish reason.
    with pytest.raises(BackendError, match="stream ended"):
        run(smollm2.generate("hello " * 2100, max_tokens=8))


# -- a small fake OpenAI server ---------------------------------------------------------------

OK = "ok"


class FakeOpenAI:
    """Answers each request with the next step of ``plan`` (the last step repeats)."""

    def __init__(self, plan):
        self.plan = list(plan)
        self.requests: list[SimpleNamespace] = []

    def step(self):
        return self.plan[min(len(self.requests) - 1, len(self.plan) - 1)]


def chat_json(body):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def chat_events(body):
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
    deltas = [{"role": "assistant", "content": "Hello"}, {"content": " there"}, {}]
    for delta, finish in zip(deltas, [None, None, "length"], strict=True):
        yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    yield {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def embeddings_json(body):
    count = len(body["input"])
    data = [{"object": "embedding", "index": i, "embedding": [float(i), 0.5]} for i in range(count)]
    return {
        "object": "list",
        "data": data[::-1],
        "model": body["model"],
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }


class Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        url = urlparse(self.path)
        self.fake.requests.append(
            SimpleNamespace(
                path=url.path,
                query=parse_qs(url.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
        )
        step = self.fake.step()
        if step != OK:
            status, headers, payload = step
            return self.reply(status, payload, headers)
        if url.path.endswith("/embeddings"):
            return self.reply(200, embeddings_json(body))
        if not body.get("stream"):
            return self.reply(200, chat_json(body))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for event in chat_events(body):
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def reply(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def fake_server(*plan):
    fake = FakeOpenAI(plan or [OK])
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Handler,), {"fake": fake}))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def error(status, message, headers=None, code=None):
    return status, headers or {}, {"error": {"message": message, "type": "error", "code": code}}


def test_rate_limit_is_retried_after_retry_after():
    with fake_server(error(429, "slow down", {"Retry-After": "1"}), OK) as (fake, url):
        model = load_model(record(base_url=url), retry=RetryPolicy(max_attempts=3))
        start = time.perf_counter()
        out = run(model.generate(HELLO, max_tokens=5))
        waited = time.perf_counter() - start
    assert out.text == "Hello there"
    assert len(fake.requests) == 2
    assert waited >= 0.9
    # The server's usage from the stream wins over any estimate.
    assert (out.usage.input_tokens, out.usage.output_tokens) == (5, 2)
    assert out.finish_reason == "length"
    sent = fake.requests[-1].body
    assert sent["model"] == "gpt-test" and sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 5 and sent["seed"] == 0 and "stop" not in sent


def test_rate_limit_surfaces_after_max_attempts():
    with fake_server(error(429, "quota", {"retry-after-ms": "50"})) as (fake, url):
        model = load_model(record(base_url=url), retry=RetryPolicy(max_attempts=2))
        with pytest.raises(RateLimitError) as err:
            run(model.generate(HELLO))
    assert len(fake.requests) == 2
    assert err.value.retry_after == pytest.approx(0.05)


def test_server_errors_are_transient_and_bad_requests_are_not():
    with fake_server(error(503, "overloaded"), OK) as (fake, url):
        out = run(
            load_model(record(base_url=url), retry=RetryPolicy(max_attempts=2, base_delay_s=0.01)).generate(
                HELLO
            )
        )
        assert out.text == "Hello there" and len(fake.requests) == 2
    overflow = (
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
        "(4000 in the messages, 1000 in the completion). Please reduce the length."
    )
    too_long = error(400, overflow, code="context_length_exceeded")
    with fake_server(too_long) as (fake, url), pytest.raises(ContextLengthExceededError) as err:
        run(load_model(record(base_url=url)).generate(HELLO))
    assert (err.value.prompt_tokens, err.value.max_tokens, err.value.context_length) == (4000, 1000, 4096)
    assert len(fake.requests) == 1


def test_unreachable_server_is_transient():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(TransientError, match="could not reach"):
        run(load_model(record(base_url=url), retry=RetryPolicy(max_attempts=1)).generate(HELLO))


def test_key_comes_from_env_and_never_shows(monkeypatch):
    secret = "sk-test-secret-0123456789"
    monkeypatch.setenv("MODELATLAS_TEST_KEY", secret)
    with fake_server(error(401, f"Incorrect API key provided: {secret}")) as (fake, url):
        model = load_model(record(base_url=url, api_key_env="MODELATLAS_TEST_KEY"))
        with pytest.raises(BackendError) as err:
            run(model.backend.generate(HELLO, GenerationParams()))
    assert fake.requests[0].headers["authorization"] == f"Bearer {secret}"
    assert "MODELATLAS_TEST_KEY" in str(err.value)
    assert secret not in str(err.value)
    assert err.value.__context__ is None and err.value.__cause__ is None
    assert secret not in json.dumps(model.record.model_dump())


def test_missing_api_key(monkeypatch):
    monkeypatch.delenv("MODELATLAS_TEST_MISSING_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="MODELATLAS_TEST_MISSING_KEY") as err:
        load_model(record(api_key_env="MODELATLAS_TEST_MISSING_KEY"))
    assert err.value.variable == "MODELATLAS_TEST_MISSING_KEY"


def test_bad_options_fail_before_any_call():
    with pytest.raises(ConfigError, match="api_key"):
        load_model(record(api_key="sk-should-not-be-an-option"))


def test_azure_needs_an_endpoint(monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        load_model(record("azure/gpt-4o", azure=True))


def test_azure_uses_deployment_and_api_version(monkeypatch):
    monkeypatch.setenv("MODELATLAS_TEST_AZURE_KEY", "azure-secret")
    with fake_server(OK) as (fake, url):
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", url.removesuffix("/v1"))
        rec = record("azure/gpt-4o", azure=True, deployment="my-dep", api_key_env="MODELATLAS_TEST_AZURE_KEY")
        out = run(load_model(rec).generate(HELLO, stop=["\n"]))
    sent = fake.requests[0]
    assert out.text == "Hello there"
    assert sent.path == "/openai/deployments/my-dep/chat/completions"
    assert sent.query["api-version"] == ["2024-10-21"]
    assert sent.headers["api-key"] == "azure-secret" and sent.body["stop"] == ["\n"]


def test_embeddings_in_input_order():
    with fake_server(OK) as (fake, url):
        model = load_model(record("fake/text-embedding-test", base_url=url, context_length=8192))
        out = run(model.embed(["a", "b", "c"]))
        run(model.aclose())
    assert out.vectors == [[0.0, 0.5], [1.0, 0.5], [2.0, 0.5]]
    assert out.usage.input_tokens == 3
    assert fake.requests[0].body["model"] == "text-embedding-test"
    assert model.context_length == 8192


def test_retry_after_header_forms():
    def exc(**headers):
        return SimpleNamespace(response=SimpleNamespace(headers=headers))

    assert retry_after(exc(**{"retry-after": "2"})) == 2.0
    assert retry_after(exc(**{"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert 8 <= retry_after(exc(**{"retry-after": formatdate(time.time() + 10, usegmt=True)})) <= 10
    assert retry_after(exc(**{"retry-after": "soon"})) is None
    assert retry_after(exc()) is None


@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY")
def test_real_openai():
    model = load_model(record("openai/gpt-4.1-mini", api_key_env="OPENAI_API_KEY"))
    out = run(model.generate(HELLO, max_tokens=16))
    assert out.text.strip() and out.usage.input_tokens > 0 and out.usage.output_tokens > 0
    run(model.aclose())


# -- tools, response formats, penalties and logprobs pass through (issue 15) ------------------
# A real HTTP server on 127.0.0.1 records the JSON body the SDK sends and answers with OpenAI's
# own tool-call shapes, whole and streamed as fragments of the arguments.

TOOL_ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
    },
}
TOOL_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def tool_params(**fields):
    from modelatlas.structured import Tool

    tools = tuple(Tool(**t["function"]) for t in (TOOL_ADD, TOOL_WEATHER))
    return GenerationParams(tools=tools, max_tokens=20, **fields)


def tool_call_json(body):
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}},
        {
            "id": "call_w",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        },
    ]
    top = [{"token": "x", "logprob": -0.1, "bytes": [120]}, {"token": "y", "logprob": -2.5, "bytes": None}]
    logprobs = {"content": [{"token": "x", "logprob": -0.1, "bytes": [120], "top_logprobs": top}]}
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls", "logprobs": logprobs}
    return {**chat_json(body), "choices": [choice]}


def tool_call_events(body):
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}

    def call(index, arguments, id=None, name=None):
        function = {"arguments": arguments} | ({"name": name} if name else {})
        return {"index": index, "type": "function", "function": function} | ({"id": id} if id else {})

    deltas = [
        {"role": "assistant", "content": None},
        {"tool_calls": [call(0, "", id="call_a", name="add")]},
        {"tool_calls": [call(0, '{"a": 2, ')]},
        {"tool_calls": [call(0, '"b": 3}')]},
        {"tool_calls": [call(1, '{"city":', id="call_w", name="get_weather")]},
        {"tool_calls": [call(1, ' "Oslo"}')]},
        {},
    ]
    for i, delta in enumerate(deltas):
        finish = "tool_calls" if i == len(deltas) - 1 else None
        yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    yield {**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 30, "total_tokens": 39}}


class ToolHandler(Handler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.fake.requests.append(SimpleNamespace(path=urlparse(self.path).path, body=body))
        if not body.get("stream"):
            return self.reply(200, tool_call_json(body))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for event in tool_call_events(body):
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


@contextlib.contextmanager
def tool_server():
    fake = FakeOpenAI([OK])
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (ToolHandler,), {"fake": fake}))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_every_new_field_reaches_the_server_and_calls_and_logprobs_come_back():
    from modelatlas.structured import ResponseFormat

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = ResponseFormat(type="json_schema", json_schema=schema, name="count", strict=True)
    params = tool_params(
        tool_choice="add",
        parallel_tool_calls=False,
        response_format=fmt,
        presence_penalty=0.5,
        frequency_penalty=-0.25,
        logit_bias=((50256, -100.0),),
        logprobs=2,
    )
    with tool_server() as (fake, url):
        model = load_model(record(base_url=url))
        model.backend.check_params(params)  # the backend honours every one of them
        out = run(model.backend.generate(HELLO, params))  # the whole answer, not streamed
        run(model.aclose())
    sent = fake.requests[0].body
    assert sent["tools"] == [TOOL_ADD, TOOL_WEATHER]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "count", "schema": schema, "strict": True},
    }
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, -0.25)
    assert sent["logit_bias"] == {"50256": -100.0}
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)
    assert [(c.id, c.name, json.loads(c.arguments)) for c in out.tool_calls] == [
        ("call_a", "add", {"a": 2, "b": 3}),
        ("call_w", "get_weather", {"city": "Oslo"}),
    ]
    assert out.finish_reason == "tool_calls" and out.text == ""
    (token,) = out.logprobs
    assert (token.token, token.logprob, token.bytes) == ("x", -0.1, [120])
    assert [(t.token, t.logprob) for t in token.top] == [("x", -0.1), ("y", -2.5)]


def test_plain_requests_send_none_of_the_new_fields():
    with tool_server() as (fake, url):
        model = load_model(record(base_url=url))
        run(model.backend.generate(HELLO, GenerationParams(max_tokens=5)))
        run(model.aclose())
    sent = fake.requests[0].body
    for name in ("tools", "tool_choice", "parallel_tool_calls", "response_format", "logprobs", "logit_bias"):
        assert name not in sent
    assert "presence_penalty" not in sent and "frequency_penalty" not in sent


def test_streamed_call_fragments_come_out_as_whole_calls():
    with tool_server() as (fake, url):
        model = load_model(record(base_url=url))
        chunks = run(collect(model, HELLO, **tool_params(tool_choice="required").model_dump()))
        run(model.aclose())
    assert fake.requests[0].body["tool_choice"] == "required" and fake.requests[0].body["stream"] is True
    with_calls = [c for c in chunks if c.tool_calls]
    assert [[call.name for call in c.tool_calls] for c in with_calls] == [["add"], ["get_weather"]]
    first, second = (c.tool_calls[0] for c in with_calls)
    assert (first.id, json.loads(first.arguments)) == ("call_a", {"a": 2, "b": 3})
    assert (second.id, json.loads(second.arguments)) == ("call_w", {"city": "Oslo"})
    assert chunks[-1].finish_reason == "tool_calls" and chunks[-1].usage.output_tokens == 30


def test_tools_on_a_plain_prompt_are_refused_naming_the_field():
    from modelatlas.errors import InvalidRequestError

    with tool_server() as (fake, url):
        model = load_model(record(base_url=url))
        with pytest.raises(InvalidRequestError) as err:
            run(model.backend.generate("2 + 3 =", tool_params()))
        run(model.aclose())
    assert err.value.param == "tools" and fake.requests == []
