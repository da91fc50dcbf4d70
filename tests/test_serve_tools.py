"""Tool calls and structured outputs through `modelatlas serve` (with a key), called with the
openai SDK: Qwen2.5-Coder's chat template has tools, SmolLM2's has none."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import BaseModel

from tests.servers import modelatlas_serve, new_key

openai = pytest.importorskip("openai")

CHAT = "local/smollm2-135m-instruct"
CODER = "local/qwen2.5-coder-0.5b-instruct"
AUTH: dict[str, str] = {}


def function(name: str, description: str, **properties: str) -> dict:
    schema = {"type": "object", "properties": {k: {"type": v} for k, v in properties.items()}}
    schema["required"] = list(properties)
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


WEATHER = function("get_weather", "The current weather in a city.", city="string")
TIME = function("get_time", "The current time in a time zone.", zone="string")
PARIS = [{"role": "user", "content": "What is the weather in Paris right now?"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    secret = new_key(folder / "home", "tests")
    AUTH["Authorization"] = f"Bearer {secret}"
    args = ["--model", CHAT, "--model", CODER]
    with modelatlas_serve(folder, args) as base:
        yield base


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=AUTH["Authorization"].split()[1], max_retries=0)


def the_call(answer, name: str) -> dict:
    """The one tool call of the answer's first choice, checked to be OpenAI's shape; its arguments."""
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls and calls[0].type == "function" and calls[0].id
    assert calls[0].function.name == name
    return json.loads(calls[0].function.arguments)


def test_auto_calls_the_tool_that_fits(client):
    answer = client.chat.completions.create(
        model=CODER, messages=PARIS, tools=[WEATHER, TIME], max_tokens=60, temperature=0
    )
    arguments = the_call(answer, "get_weather")
    assert "paris" in arguments["city"].lower()


def test_required_calls_a_tool_even_for_small_talk(client):
    answer = client.chat.completions.create(
        model=CODER,
        messages=[{"role": "user", "content": "Hello there!"}],
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=60,
        temperature=0,
    )
    assert isinstance(the_call(answer, "get_weather")["city"], str)


def test_a_named_tool_choice_calls_that_function(client):
    answer = client.chat.completions.create(
        model=CODER,
        messages=PARIS,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        max_tokens=60,
        temperature=0,
    )
    assert isinstance(the_call(answer, "get_time")["zone"], str)


def test_none_answers_in_text(client):
    answer = client.chat.completions.create(
        model=CODER, messages=PARIS, tools=[WEATHER], tool_choice="none", max_tokens=20, temperature=0
    )
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].message.content


def test_a_tool_result_turn_is_answered_in_text(client):
    turn = [
        *PARIS,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature_c": 21, "sky": "sunny"}'},
    ]
    answer = client.chat.completions.create(
        model=CODER, messages=turn, tools=[WEATHER], max_tokens=40, temperature=0
    )
    content = answer.choices[0].message.content or ""  # the 0.5B model may also call again
    assert "21" in content or "sunny" in content.lower()  # it read the tool's result


def test_tool_calls_stream_as_openai_streams_them(client):
    stream = client.chat.completions.create(
        model=CODER,
        messages=PARIS,
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=60,
        temperature=0,
        stream=True,
    )
    calls: dict[int, dict] = {}
    reasons = []
    for chunk in stream:
        for choice in chunk.choices:
            reasons.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = call["id"] or delta.id
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    assert list(calls) == [0] and calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert isinstance(json.loads(calls[0]["arguments"])["city"], str)
    assert reasons[-1] == "tool_calls"


def test_a_model_without_tool_support_refuses_tools(server):
    body = {"model": CHAT, "messages": PARIS, "tools": [WEATHER], "max_tokens": 8}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, headers=AUTH, timeout=60)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tools"


class City(BaseModel):
    name: str
    country: str
    population: int


def test_parse_with_a_pydantic_model(client):
    answer = client.chat.completions.parse(
        model=CHAT,
        messages=[
            {"role": "user", "content": "Describe Paris as JSON with its name, country and population."}
        ],
        response_format=City,
        max_tokens=80,
        temperature=0,
    )
    city = answer.choices[0].message.parsed
    assert isinstance(city, City) and city.name


def test_json_object_always_parses(client):
    answer = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Give me a JSON object about a cat."}],
        response_format={"type": "json_object"},
        max_tokens=60,
        temperature=0,
    )
    choice = answer.choices[0]
    if choice.finish_reason == "stop":
        assert isinstance(json.loads(choice.message.content), dict)
    else:  # cut by max_tokens: still the start of one object
        assert choice.message.content.lstrip().startswith("{")
