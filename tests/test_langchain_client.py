"""LangChain's ChatOpenAI against a real `modelatlas serve` (with a key): bind_tools and
with_structured_output, by function calling (Qwen2.5-Coder, whose template has tools) and by
JSON schema (SmolLM2, through the response_format grammar)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from tests.servers import modelatlas_serve, new_key

langchain_openai = pytest.importorskip("langchain_openai")

CHAT = "local/smollm2-135m-instruct"
CODER = "local/qwen2.5-coder-0.5b-instruct"
SECRET: dict[str, str] = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    secret = new_key(folder / "home", "tests")
    SECRET["key"] = secret
    args = ["--model", CHAT, "--model", CODER]
    with modelatlas_serve(folder, args) as base:
        yield base + "/v1"


def chat_model(server: str, model: str, **kwargs):
    return langchain_openai.ChatOpenAI(
        base_url=server, api_key=SECRET["key"], model=model, temperature=0, max_retries=0, **kwargs
    )


class GetWeather(BaseModel):
    """The current weather in a city."""

    city: str = Field(description="the city's name")


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


def test_bind_tools_gets_a_tool_call(server):
    llm = chat_model(server, CODER, max_tokens=60).bind_tools([GetWeather])
    message = llm.invoke("What is the weather in Paris right now?")
    assert message.tool_calls, message
    call = message.tool_calls[0]
    assert call["name"] == "GetWeather" and "paris" in call["args"]["city"].lower()
    assert call["id"]


def test_structured_output_by_function_calling(server):
    llm = chat_model(server, CODER, max_tokens=60).with_structured_output(Person, method="function_calling")
    person = llm.invoke("Alice is 31 years old. Extract the person.")
    assert isinstance(person, Person)
    assert person.name == "Alice" and person.age == 31


def test_structured_output_by_json_schema(server):
    llm = chat_model(server, CHAT, max_tokens=60).with_structured_output(Person, method="json_schema")
    person = llm.invoke("Alice is 31 years old. Extract the person as JSON.")
    assert isinstance(person, Person) and person.name
