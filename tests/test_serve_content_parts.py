"""Content parts through `modelatlas serve` (issue 12 item 1), called with the official openai SDK.

The local SmolLM2 takes text only: text-part arrays work, an image or a sound is a 400 that names
the model and what it accepts. A hosted model (the openai backend, whose provider here is a small
recording OpenAI server on 127.0.0.1) takes images, audio, tool calls and tool results, and gets
them in OpenAI's shape, the image bytes unchanged and a URL passed on, never fetched.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import httpx
import pytest

from tests.servers import free_port, python_server
from tests.test_backend_openai import fake_server

openai = pytest.importorskip("openai")

CHAT = "local/smollm2-135m-instruct"
HOSTED = "gw/vision"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00fake image bytes\xff"
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
WAV = base64.b64encode(b"RIFF\x00\x00\x00\x00WAVEfmt fake sound").decode()


@pytest.fixture(scope="module")
def provider():
    with fake_server() as (fake, url):
        yield fake, url


@pytest.fixture(scope="module")
def server(provider, tmp_path_factory):
    folder = tmp_path_factory.mktemp("parts")
    env = {**os.environ, "MODELATLAS_HOME": str(folder / "home")}
    env.pop("MODELATLAS_DATABASE_URL", None)
    records = folder / "hosted.yaml"
    records.write_text(
        f"- id: {HOSTED}\n  backend: openai\n  mode: chat\n  hosting: hosted\n  context_length: 4096\n"
        f"  options: {{base_url: '{provider[1]}', model: vision}}\n"
    )
    add = [sys.executable, "-m", "modelatlas", "catalog", "add", str(records)]
    subprocess.run(add, env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--no-auth", "--model", CHAT, "--model", HOSTED]
    with python_server(args, port, ready_path="/health", log_path=str(folder / "server.log"), env=env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def look(*parts: dict) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, *parts]}]


IMAGE = {"type": "image_url", "image_url": {"url": PNG_URL}}
AUDIO = {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}


def test_text_part_arrays_work_on_a_local_text_model(client):
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Answer in one word."}]},
        {"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hello."}]},
    ]
    answer = client.chat.completions.create(model=CHAT, messages=messages, max_tokens=4, temperature=0)
    assert answer.choices[0].message.content
    assert answer.usage.prompt_tokens > 0


@pytest.mark.parametrize(("part", "kind"), [(IMAGE, "image"), (AUDIO, "audio")])
def test_a_local_text_model_refuses_images_and_audio_with_a_400(client, part, kind):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=look(part), max_tokens=4)
    error = caught.value
    assert error.status_code == 400
    assert CHAT in error.message and "It accepts: text" in error.message and f"a {kind} part" in error.message
    assert error.body["param"] == "messages[0]" and error.body["type"] == "invalid_request_error"


def test_a_stream_is_refused_before_it_starts(server):
    body = {"model": CHAT, "messages": look(IMAGE), "max_tokens": 4, "stream": True}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400
    assert "It accepts: text" in response.json()["error"]["message"]


def test_a_hosted_model_gets_images_and_audio_in_openais_shape(client, provider):
    fake, _ = provider
    before = len(fake.requests)
    url = {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/never-fetched.png"}}
    answer = client.chat.completions.create(model=HOSTED, messages=look(IMAGE, url, AUDIO), max_tokens=8)
    assert answer.choices[0].message.content == "Hello there"
    sent = fake.requests[before].body["messages"][0]["content"]
    assert sent == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/never-fetched.png"}},
        {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
    ]


def test_tool_calls_and_results_reach_the_provider(client, provider):
    fake, _ = provider
    before = len(fake.requests)
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
    }
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees"},
    ]
    client.chat.completions.create(model=HOSTED, messages=messages, max_tokens=8)
    sent = fake.requests[before].body["messages"]
    assert sent[1] == {"role": "assistant", "content": "", "tool_calls": [call]}
    assert sent[2] == {"role": "tool", "content": "21 degrees", "tool_call_id": "call_1"}


def test_bytes_that_are_not_base64_are_a_400_naming_the_part(client):
    bad = {"type": "input_audio", "input_audio": {"data": "not base64!", "format": "wav"}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=HOSTED, messages=look(bad), max_tokens=4)
    assert caught.value.body["param"] == "messages[0].content[1].input_audio.data"
    with pytest.raises(openai.BadRequestError) as caught:
        bad_url = {"type": "image_url", "image_url": {"url": "data:image/png,raw"}}
        client.chat.completions.create(model=HOSTED, messages=look(bad_url), max_tokens=4)
    assert caught.value.body["param"] == "messages[0].content[1].image_url.url"


def test_tool_calls_on_a_user_message_are_a_400(client):
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=HOSTED, messages=[{"role": "user", "content": "x", "tool_calls": [call]}], max_tokens=4
        )
    assert "assistant message" in caught.value.message and caught.value.body["param"] == "messages[0]"


def test_a_local_model_reads_a_tool_conversation_as_text(client):
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees"},
    ]
    answer = client.chat.completions.create(model=CHAT, messages=messages, max_tokens=4, temperature=0)
    assert answer.choices[0].finish_reason in ("stop", "length")
