"""Every parameter of OpenAI's chat request against a real `modelatlas serve` (with a key):
each is honoured (and, where cheap, seen to take effect) or refused with a 400 naming it.

SmolLM2 answers everything but tools (its chat template has none: tools are a 400 from it);
Qwen2.5-Coder, whose template has tools, answers the tool parameters of the table.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from modelatlas.serve.chat_params import PARAMETERS
from tests.servers import modelatlas_serve, new_key

openai = pytest.importorskip("openai")

CHAT = "local/smollm2-135m-instruct"
CODER = "local/qwen2.5-coder-0.5b-instruct"
AUTH: dict[str, str] = {}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

# (parameter, sample value, "honoured" or "refused", model). Honoured: a 200; refused: a 400
# whose param names it. Some honoured samples need a companion parameter (EXTRA).
CASES = [
    ("messages", [{"role": "user", "content": "Hi"}], "honoured", CHAT),
    ("model", CHAT, "honoured", CHAT),
    ("max_tokens", 3, "honoured", CHAT),
    ("max_completion_tokens", 3, "honoured", CHAT),
    ("temperature", 0.7, "honoured", CHAT),
    ("top_p", 0.9, "honoured", CHAT),
    ("stop", ["\n", "."], "honoured", CHAT),
    ("seed", 7, "honoured", CHAT),
    ("stream", True, "honoured", CHAT),
    ("stream_options", {"include_usage": True}, "honoured", CHAT),
    ("n", 2, "honoured", CHAT),
    ("logprobs", True, "honoured", CHAT),
    ("top_logprobs", 2, "honoured", CHAT),
    ("presence_penalty", 0.5, "honoured", CHAT),
    ("frequency_penalty", 0.5, "honoured", CHAT),
    ("logit_bias", {"28": -5}, "honoured", CHAT),
    ("tools", [WEATHER], "honoured", CODER),
    ("tool_choice", "none", "honoured", CODER),
    ("parallel_tool_calls", False, "honoured", CODER),
    ("response_format", {"type": "json_object"}, "honoured", CHAT),
    ("user", "user-1", "honoured", CHAT),
    ("safety_identifier", "hashed-user-1", "honoured", CHAT),
    ("prompt_cache_key", "conversation-1", "honoured", CHAT),
    ("prompt_cache_retention", "24h", "honoured", CHAT),
    ("prompt_cache_options", {"mode": "implicit"}, "honoured", CHAT),
    ("functions", [{"name": "f", "parameters": {"type": "object"}}], "refused", CHAT),
    ("function_call", "auto", "refused", CHAT),
    ("audio", {"voice": "alloy", "format": "wav"}, "refused", CHAT),
    ("modalities", ["text", "audio"], "refused", CHAT),
    ("prediction", {"type": "content", "content": "Hello"}, "refused", CHAT),
    ("web_search_options", {}, "refused", CHAT),
    ("reasoning_effort", "low", "refused", CHAT),
    ("verbosity", "high", "refused", CHAT),
    ("service_tier", "flex", "refused", CHAT),
    ("store", True, "refused", CHAT),
    ("metadata", {"team": "a"}, "refused", CHAT),
    ("moderation", {"model": "omni-moderation-latest"}, "refused", CHAT),
]
EXTRA = {
    "stream_options": {"stream": True},
    "top_logprobs": {"logprobs": True},
    "tool_choice": {"tools": [WEATHER]},
    "parallel_tool_calls": {"tools": [WEATHER]},
}
# The default value of a refused parameter is accepted (a client that always sends it works).
DEFAULTS_ACCEPTED = [
    ("modalities", ["text"]),
    ("service_tier", "auto"),
    ("service_tier", "default"),
    ("store", False),
    ("verbosity", "medium"),
    ("metadata", {}),
]


def post(url: str, **kwargs) -> httpx.Response:
    return httpx.post(url, headers=AUTH, timeout=120, **kwargs)


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


def chat(server: str, **body) -> httpx.Response:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4, **body}
    return post(f"{server}/v1/chat/completions", json=body)


def test_the_table_covers_every_parameter_of_the_sdk():
    from openai.types.chat.completion_create_params import CompletionCreateParamsBase

    sdk = set(CompletionCreateParamsBase.__annotations__) | {"stream"}
    assert sdk <= set(PARAMETERS), sdk - set(PARAMETERS)
    assert {case[0] for case in CASES} == set(PARAMETERS)
    assert all(PARAMETERS[name] == expect for name, _, expect, _ in CASES)


@pytest.mark.parametrize(("name", "value", "expect", "model"), CASES, ids=[c[0] for c in CASES])
def test_each_parameter_is_honoured_or_refused(server, name, value, expect, model):
    response = chat(server, **{"model": model, **EXTRA.get(name, {}), name: value})
    if expect == "honoured":
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == name and name in error["message"]


@pytest.mark.parametrize(("name", "value"), DEFAULTS_ACCEPTED)
def test_a_refused_parameter_at_its_default_is_accepted(server, name, value):
    assert chat(server, **{name: value}).status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": "two"}, "n"),
        ({"n": 0}, "n"),
        ({"temperature": "hot"}, "temperature"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"frequency_penalty": "x"}, "frequency_penalty"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"5": 200}}, "logit_bias"),
        ({"logit_bias": [1, 2]}, "logit_bias"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"seed": "7"}, "seed"),
        ({"user": 5}, "user"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ],
    ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else v,
)
def test_a_wrong_value_is_a_400_naming_the_parameter(server, body, param):
    response = chat(server, **body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_an_unknown_field_is_ignored(server):
    assert chat(server, not_an_openai_field=1).status_code == 200


def test_n_gives_that_many_choices_each_metered(client):
    answer = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Tell a story."}],
        max_tokens=5,
        n=2,
        temperature=1,
        seed=3,
    )
    assert [c.index for c in answer.choices] == [0, 1]
    assert all(c.finish_reason == "length" and c.message.content for c in answer.choices)
    assert answer.usage.completion_tokens == 10  # 5 per choice


def test_n_streams_each_choice_by_index(client):
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Tell a story."}],
        max_tokens=4,
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    texts: dict[int, str] = {0: "", 1: ""}
    finished, usage = set(), None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1} and texts[0] and texts[1]
    assert usage is not None and usage.completion_tokens == 8


def test_chat_logprobs(client):
    answer = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Say hello."}], max_tokens=4, temperature=0,
        logprobs=True, top_logprobs=3,
    )  # fmt: skip
    content = answer.choices[0].logprobs.content
    assert len(content) == answer.usage.completion_tokens == 4
    assert "".join(t.token for t in content) == answer.choices[0].message.content
    for token in content:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3
        assert token.top_logprobs[0].token == token.token  # greedy: the likeliest was written
        assert bytes(token.bytes).decode("utf-8", "replace") == token.token


def test_chat_logprobs_streamed(client):
    stream = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Say hello."}], max_tokens=4, temperature=0,
        logprobs=True, top_logprobs=1, stream=True,
    )  # fmt: skip
    tokens = [t for chunk in stream for c in chunk.choices if c.logprobs for t in c.logprobs.content or []]
    assert len(tokens) == 4 and all(len(t.top_logprobs) == 1 for t in tokens)


def test_stop_cuts_the_answer(client):
    ask = [{"role": "user", "content": "Count from one to ten."}]
    whole = client.chat.completions.create(model=CHAT, messages=ask, max_tokens=24, temperature=0)
    text = whole.choices[0].message.content
    words = text.split()
    assert len(words) > 2, text
    stop = words[2]
    cut = client.chat.completions.create(model=CHAT, messages=ask, max_tokens=24, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_seed_reproduces_a_sampled_answer(client):
    ask = [{"role": "user", "content": "Write a sentence about the sea."}]
    answers = [
        client.chat.completions.create(model=CHAT, messages=ask, max_tokens=16, temperature=1, seed=1234)
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert answers[0] == answers[1]


def test_max_completion_tokens_caps_the_answer(client):
    answer = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Tell a long story."}], max_completion_tokens=3
    )
    assert answer.usage.completion_tokens == 3 and answer.choices[0].finish_reason == "length"


def test_logit_bias_against_the_greedy_first_token_changes_it(client, smollm2_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    ask = [{"role": "user", "content": "Say hello."}]
    greedy = client.chat.completions.create(
        model=CHAT, messages=ask, max_tokens=3, temperature=0, logprobs=True
    )
    first = greedy.choices[0].logprobs.content[0]
    vocab = llama_cpp.Llama(model_path=smollm2_path, vocab_only=True, verbose=False)
    ids = vocab.tokenize(bytes(first.bytes), add_bos=False, special=True)
    assert len(ids) == 1, ids
    biased = client.chat.completions.create(
        model=CHAT, messages=ask, max_tokens=3, temperature=0, logprobs=True, logit_bias={str(ids[0]): -100}
    )
    assert biased.choices[0].logprobs.content[0].token != first.token


def test_penalties_change_a_repetitive_greedy_answer(client):
    ask = [{"role": "user", "content": "Write the word cat twenty times."}]
    plain = client.chat.completions.create(model=CHAT, messages=ask, max_tokens=30, temperature=0)
    text = plain.choices[0].message.content
    for penalty in ({"frequency_penalty": 2.0}, {"presence_penalty": 2.0}):
        penalised = client.chat.completions.create(
            model=CHAT, messages=ask, max_tokens=30, temperature=0, **penalty
        )
        assert penalised.choices[0].message.content != text, penalty


# -- context overflow ------------------------------------------------------------------------

OPENAI_OVERFLOW = re.compile(
    r"This model's maximum context length is (\d+) tokens\. However, your messages resulted in (\d+) "
    r"tokens \((\d+) in the messages, (\d+) in the completion\)\. Please reduce the length of the "
    r"messages or completion\."
)


def test_context_overflow_is_worded_as_openai_words_it(server, client):
    messages = [{"role": "user", "content": "Hi"}]
    for stream in (False, True):
        response = chat(server, messages=messages, max_tokens=100_000, stream=stream)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded" and error["type"] == "invalid_request_error"
        found = OPENAI_OVERFLOW.search(error["message"])
        assert found, error["message"]
        window, total, prompt, completion = map(int, found.groups())
        assert (completion, total) == (100_000, prompt + completion) and window == 8192
        # LiteLLM's exception mapping and hand-written fallbacks look for these substrings.
        for phrase in ("This model's maximum context length is", "maximum context length"):
            assert phrase in error["message"]
    # The messages are counted as the model reads them: through the chat template.
    answer = client.chat.completions.create(model=CHAT, messages=messages, max_tokens=1)
    assert answer.usage.prompt_tokens == prompt > 1


def test_a_short_chat_counts_its_templated_prompt(client, smollm2_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    vocab = llama_cpp.Llama(model_path=smollm2_path, vocab_only=True, verbose=False)
    template = vocab.metadata["tokenizer.chat_template"]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    rendered = Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="<|im_start|>")(
        messages=messages
    )
    expected = len(vocab.tokenize(rendered.prompt.encode(), add_bos=False, special=True))
    answer = client.chat.completions.create(model=CHAT, messages=messages, max_tokens=1)
    assert answer.usage.prompt_tokens == expected and expected > 10
