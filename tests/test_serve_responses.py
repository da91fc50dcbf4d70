"""POST /v1/responses on a real `modelatlas serve` subprocess with a key, called with the openai
SDK's client.responses.create: whole and streamed answers, instructions, messages, the
incomplete status, JSON schema output, tool calls, stored conversations, metering and refusals."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import httpx
import pytest

from modelatlas.backends import llamacpp
from tests.servers import modelatlas_serve, new_key

openai = pytest.importorskip("openai")

CHAT = "local/smollm2-135m-instruct"
PNG = (  # one pixel
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
CODER = "local/qwen2.5-coder-0.5b-instruct"
BASE = "local/gemma-3-270m"
_LLAMACPP = open(llamacpp.__file__).read()
needs_grammar = pytest.mark.skipif("response_grammar" not in _LLAMACPP, reason="needs the JSON grammar work")
needs_tools = pytest.mark.skipif("grammar_for" not in _LLAMACPP, reason="needs the tool-call parsing work")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The server's URL and home; it serves SmolLM2 (no tool support), Qwen2.5-Coder (tools)
    and the Gemma base model."""
    folder = tmp_path_factory.mktemp("responses")
    home = folder / "home"
    new_key(home, "setup")  # the database exists before the server starts
    with modelatlas_serve(folder, ["--model", CHAT, "--model", CODER, "--model", BASE]) as base:
        yield base, home


@pytest.fixture
def client(served):
    """A client with a key of its own (so that its usage is this test's alone)."""
    base, home = served
    secret = new_key(home, f"test-{uuid.uuid4().hex[:8]}")
    made = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
    made.secret = secret  # type: ignore[attr-defined]
    return made


def usage_of(base: str, secret: str) -> dict:
    return httpx.get(f"{base}/v1/usage", headers={"Authorization": f"Bearer {secret}"}, timeout=30).json()


def post(base: str, secret: str, **body) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.post(
        f"{base}/v1/responses", json={"model": CHAT, "input": "Hi.", **body}, headers=headers, timeout=60
    )


def test_create_answers_text_with_usage_the_key_is_metered_for(served, client):
    base, home = served
    resp = client.responses.create(model=CHAT, input="Say hello.", max_output_tokens=16, temperature=0)
    assert resp.id.startswith("resp_") and resp.object == "response" and resp.model == CHAT
    assert resp.status in ("completed", "incomplete")
    assert resp.output_text.strip()
    assert resp.output[0].type == "message" and resp.output[0].content[0].type == "output_text"
    usage = resp.usage
    assert usage.input_tokens > 0 and 0 < usage.output_tokens <= 16
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    report = usage_of(base, client.secret)
    assert report["requests"] == 1
    assert [report["input_tokens"], report["output_tokens"]] == [usage.input_tokens, usage.output_tokens]
    with sqlite3.connect(home / "modelatlas.db") as db:
        endpoints = {
            row[0] for row in db.execute("SELECT endpoint FROM usage_records WHERE model_id = ?", (CHAT,))
        }
    assert "responses" in endpoints


def test_the_same_prompt_costs_as_many_input_tokens_as_on_chat(client):
    """The conversation reaches the model as the chat route's does (same template, same count)."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]
    chat = client.chat.completions.create(model=CHAT, messages=messages, max_tokens=4, temperature=0)
    resp = client.responses.create(
        model=CHAT, instructions="Be brief.", input="Name a colour.", max_output_tokens=4, temperature=0
    )
    assert resp.usage.input_tokens == chat.usage.prompt_tokens
    assert resp.output_text == chat.choices[0].message.content


def test_stream_sends_the_events_in_order_and_the_deltas_make_the_text(served, client):
    base, _ = served
    stream = client.responses.create(
        model=CHAT, input="Count from one to five.", max_output_tokens=24, temperature=0, stream=True
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert kinds.count("response.output_text.delta") > 1
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert deltas and deltas == final.output_text == events[-4].text
    ids = {e.item_id for e in events if e.type == "response.output_text.delta"}
    assert ids == {final.output[0].id}
    report = usage_of(base, client.secret)
    assert [report["input_tokens"], report["output_tokens"]] == [
        final.usage.input_tokens,
        final.usage.output_tokens,
    ]


def test_instructions_and_messages_reach_the_model(client):
    """A developer message and instructions both become the system turn, in order: the same
    prompt as chat's system + user (its input tokens and its greedy answer are equal)."""
    as_items = client.responses.create(
        model=CHAT,
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say thanks."}]},
        ],
        max_output_tokens=8,
        temperature=0,
    )
    as_instructions = client.responses.create(
        model=CHAT, instructions="Answer in French.", input="Say thanks.", max_output_tokens=8, temperature=0
    )
    assert as_items.output_text == as_instructions.output_text
    assert as_items.usage.input_tokens == as_instructions.usage.input_tokens
    assert as_instructions.instructions == "Answer in French."
    plain = client.responses.create(model=CHAT, input="Say thanks.", max_output_tokens=8, temperature=0)
    assert plain.usage.input_tokens != as_instructions.usage.input_tokens


def test_max_output_tokens_makes_the_response_incomplete(client):
    resp = client.responses.create(
        model=CHAT, input="Write a long story about a dragon.", max_output_tokens=3, temperature=0
    )
    assert resp.status == "incomplete"
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.usage.output_tokens == 3 and resp.max_output_tokens == 3
    assert resp.output[0].status == "incomplete"


def test_include_logprobs_gives_each_tokens_logprob_and_alternatives(client):
    resp = client.responses.create(
        model=CHAT,
        input="Say hello.",
        include=["message.output_text.logprobs"],
        top_logprobs=2,
        max_output_tokens=3,
        temperature=0,
    )
    part = resp.output[0].content[0]
    assert len(part.logprobs) == resp.usage.output_tokens == 3
    assert "".join(t.token for t in part.logprobs) == part.text
    for token in part.logprobs:
        assert token.logprob <= 0 and len(token.top_logprobs) == 2
        assert token.top_logprobs[0].logprob >= token.top_logprobs[1].logprob


def test_previous_response_id_continues_a_stored_conversation(served, client):
    first = client.responses.create(model=CHAT, input="My name is Ada.", max_output_tokens=8, temperature=0)
    follow = client.responses.create(
        model=CHAT,
        input="What is my name?",
        previous_response_id=first.id,
        max_output_tokens=8,
        temperature=0,
    )
    alone = client.responses.create(model=CHAT, input="What is my name?", max_output_tokens=8, temperature=0)
    assert follow.previous_response_id == first.id
    assert follow.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens
    not_kept = client.responses.create(model=CHAT, input="Hi.", store=False, max_output_tokens=2)
    assert not_kept.store is False
    for ident, owner in (
        (not_kept.id, client.secret),
        (first.id, new_key(served[1], f"other-{uuid.uuid4().hex[:8]}")),
    ):
        answer = post(served[0], owner, previous_response_id=ident)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == "previous_response_id"


@needs_grammar
def test_json_schema_format_gives_json_that_validates(client):
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    resp = client.responses.create(
        model=CHAT,
        input="Give a city and its population as JSON.",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
        max_output_tokens=60,
        temperature=0,
    )
    jsonschema.validate(json.loads(resp.output_text), schema)
    assert resp.text.format.type == "json_schema"


@needs_grammar
def test_the_sdks_parse_fills_a_pydantic_model(client):
    from pydantic import BaseModel

    class Pet(BaseModel):
        name: str
        legs: int

    resp = client.responses.parse(
        model=CHAT, input="Describe a pet as JSON.", text_format=Pet, max_output_tokens=40, temperature=0
    )
    assert isinstance(resp.output_parsed, Pet)


@needs_tools
def test_required_tool_choice_gives_a_function_call_and_takes_its_output_back(client):
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "strict": True,
        }
    ]
    question = {"role": "user", "content": "What is the weather in Paris?"}
    resp = client.responses.create(
        model=CODER,
        input=[question],
        tools=tools,
        tool_choice="required",
        max_output_tokens=60,
        temperature=0,
    )
    calls = [item for item in resp.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and calls[0].call_id
    assert isinstance(json.loads(calls[0].arguments), dict)
    result = {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"sky": "sunny"}'}
    turn = [question, calls[0].model_dump(exclude_none=True), result]
    after = client.responses.create(model=CODER, input=turn, tools=tools, max_output_tokens=30, temperature=0)
    assert after.output_text.strip()
    assert after.usage.input_tokens > resp.usage.input_tokens


@needs_tools
def test_a_streamed_tool_call_arrives_as_function_call_events(client):
    tools = [
        {
            "type": "function",
            "name": "add",
            "parameters": {"type": "object", "properties": {}},
            "strict": None,
        }
    ]
    stream = client.responses.create(
        model=CODER,
        input="Call add.",
        tools=tools,
        tool_choice={"type": "function", "name": "add"},
        max_output_tokens=40,
        temperature=0,
        stream=True,
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.done" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    calls = [i for i in events[-1].response.output if i.type == "function_call"]
    assert calls[0].name == "add" and calls[0].arguments == done.arguments


def test_tools_on_a_model_without_tool_support_are_refused(served, client):
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]
    answer = post(served[0], client.secret, tools=tools)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] in ("tools", "model")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"reasoning": {"effort": "high"}}, "reasoning"),
        ({"include": ["reasoning.encrypted_content", "file_search_call.results"]}, "include[1]"),
        ({"background": True}, "background"),
        ({"truncation": "auto"}, "truncation"),
        ({"service_tier": "flex"}, "service_tier"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"max_tool_calls": 2}, "max_tool_calls"),
        ({"text": {"verbosity": "low"}}, "text.verbosity"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": 3}]}]},
            "input[0].content[0].text",
        ),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": PNG}]}]}, "input"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:x"}]}]},
            "input[0].content[0].image_url",
        ),
        ({"temperature": "hot"}, "temperature"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"input": None}, "input"),
        ({"model": BASE}, "model"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_the_parameter(served, client, body, param):
    answer = post(served[0], client.secret, **body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error" and error["message"]


def test_an_unknown_extra_field_is_ignored_and_metadata_echoed(served, client):
    answer = post(served[0], client.secret, not_an_openai_field=1, metadata={"run": "7"}, max_output_tokens=2)
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"] == {"run": "7"}


def test_every_sdk_parameter_is_honoured_or_refused():
    """No field of the SDK's ResponseCreateParams is left out of the table (none ignored)."""
    from openai.types.responses.response_create_params import ResponseCreateParamsBase

    from modelatlas.serve.responses_input import PARAMETERS
    from modelatlas.serve.responses_protocol import ResponsesRequest

    sdk = set(ResponseCreateParamsBase.__annotations__) | {"stream"}
    assert sdk <= set(PARAMETERS), sdk - set(PARAMETERS)
    assert set(PARAMETERS) <= set(ResponsesRequest.model_fields)


def test_a_key_without_secret_is_401(served):
    answer = httpx.post(f"{served[0]}/v1/responses", json={"model": CHAT, "input": "Hi."}, timeout=30)
    assert answer.status_code == 401


FAILS = "test/echo-fails"  # the echo backend: streams the prompt's words, fails after two


@pytest.fixture(scope="module")
def echo_served(tmp_path_factory):
    """A second server, of a deterministic echo model that fails mid-stream (no llama.cpp)."""
    from modelatlas.catalog import user
    from modelatlas.catalog.records import ModelRecord

    folder = tmp_path_factory.mktemp("responses-echo")
    home = folder / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MODELATLAS_HOME", str(home))
        user.add(ModelRecord(id=FAILS, backend="echo", mode="chat", options={"fail_after": 2}))
    secret = new_key(home, "echo")
    with modelatlas_serve(folder, ["--model", FAILS]) as base:
        yield base, home, secret


def test_an_error_mid_stream_is_a_failed_event_and_metered_with_its_status(echo_served):
    base, home, secret = echo_served
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
    events = list(client.responses.create(model=FAILS, input="one two three four five", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
    assert kinds.count("response.output_text.delta") == 2
    assert [e.sequence_number for e in events] == list(range(len(events)))
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.message
    time.sleep(0.5)  # the meter writes within a quarter of a second
    with sqlite3.connect(home / "modelatlas.db") as db:
        rows = db.execute(
            "SELECT endpoint, status, output_tokens, streamed FROM usage_records WHERE state = 'done'"
        ).fetchall()
    assert len(rows) == 1 and rows[0][0] == "responses" and rows[0][3]
    assert rows[0][1] >= 500 and rows[0][2] == 2  # the two words sent, counted
