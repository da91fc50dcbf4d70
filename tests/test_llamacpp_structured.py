"""Structured outputs and the sampling settings beyond plain ones, on the bundled SmolLM2.

Grammar-constrained answers must always parse and validate; log-probabilities, logit_bias and
penalties must reach llama.cpp's sampler and show their effect. Real model, no mocks.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import jsonschema
import pytest

from modelatlas.backends import grammars
from modelatlas.errors import InvalidRequestError
from modelatlas.loading import load_model
from modelatlas.structured import ResponseFormat
from modelatlas.types import GenerationParams, Message
from tests.conftest import run

SMOL = "local/smollm2-135m-instruct"

SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 24},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
        "required": ["name", "age", "tags"],
    },
    {
        "type": "object",
        "properties": {
            "colour": {"enum": ["red", "green", "blue"]},
            "ok": {"type": "boolean"},
            "when": {"type": "string", "format": "date"},
        },
        "required": ["colour", "ok", "when"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
        "properties": {
            "points": {"type": "array", "items": {"$ref": "#/$defs/point"}, "minItems": 1, "maxItems": 3}
        },
        "required": ["points"],
    },
]


@pytest.fixture(scope="module")
def smol():
    return load_model(SMOL)


def ask(text: str) -> list[Message]:
    return [Message.user(text)]


@pytest.mark.parametrize("schema", SCHEMAS, ids=["person", "enum-date", "refs"])
def test_json_schema_answers_always_validate(smol, schema):
    fmt = ResponseFormat(type="json_schema", json_schema=schema, strict=True)
    for prompt in ("Describe Ann, aged 31, as JSON.", "Reply with anything."):
        out = run(smol.generate(ask(prompt), GenerationParams(max_tokens=120, response_format=fmt)))
        assert out.finish_reason == "stop", out.text  # the grammar closed the object
        jsonschema.validate(json.loads(out.text), schema)


def test_json_object_answer_is_an_object(smol):
    fmt = ResponseFormat(type="json_object")
    out = run(smol.generate(ask("Tell me a joke."), GenerationParams(max_tokens=80, response_format=fmt)))
    assert isinstance(json.loads(out.text), dict)


def test_unconstrained_answer_is_not_json(smol):
    """The baseline the grammar changes: the same prompt answers in prose without it."""
    out = run(smol.generate(ask("Describe Ann, aged 31, as JSON."), GenerationParams(max_tokens=60)))
    with pytest.raises(ValueError):
        jsonschema.validate(json.loads(out.text), SCHEMAS[0])


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "integer", "minimum": 0}, "minimum"),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "oneOf"),
        ({"type": "object", "properties": {"a": {"not": {"type": "null"}}}}, "not"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
        ({"type": "string", "format": "email"}, "email"),
    ],
)
def test_unenforceable_keywords_are_refused_by_name(smol, schema, keyword):
    fmt = ResponseFormat(type="json_schema", json_schema=schema)
    with pytest.raises(InvalidRequestError) as caught:
        run(smol.generate(ask("Hi"), GenerationParams(max_tokens=8, response_format=fmt)))
    assert keyword in str(caught.value)
    assert caught.value.param == "response_format"


def test_annotations_and_pydantic_schemas_are_accepted():
    from pydantic import BaseModel, Field

    class City(BaseModel):
        name: str = Field(description="the city's name")
        country: str | None = None

    grammars.check_schema(City.model_json_schema(), "response_format")  # titles, anyOf-null, default
    assert "root ::=" in grammars.schema_grammar(City.model_json_schema(), "response_format")


def test_a_broken_ref_is_a_400_not_a_crash():
    with pytest.raises(InvalidRequestError) as caught:
        grammars.response_grammar(ResponseFormat(type="json_schema", json_schema={"$ref": "#/$defs/missing"}))
    assert caught.value.param == "response_format"


def test_logprobs_cover_every_answer_token(smol):
    out = run(smol.generate(ask("Name a colour."), GenerationParams(max_tokens=6, logprobs=3)))
    assert out.logprobs is not None and len(out.logprobs) == out.usage.output_tokens
    assert "".join(entry.token for entry in out.logprobs) == out.text
    for entry in out.logprobs:
        assert entry.logprob <= 0.0 and len(entry.top) == 3
        assert entry.bytes == list(entry.token.encode())
        # greedy: the chosen token is the likeliest one, so it leads the alternatives
        assert entry.top[0].token == entry.token
        assert math.isclose(entry.top[0].logprob, entry.logprob, abs_tol=1e-5)
        assert sum(math.exp(t.logprob) for t in entry.top) <= 1.0 + 1e-5


def test_logprobs_stream_with_their_text(smol):
    async def chunks():
        return [
            c async for c in smol.stream(ask("Count to five."), GenerationParams(max_tokens=10, logprobs=0))
        ]

    pieces = [c for c in run(chunks()) if c.text]
    assert pieces and all(c.logprobs for c in pieces)
    assert all("".join(e.token for e in c.logprobs) == c.text for c in pieces)


def test_logit_bias_bans_the_greedy_first_token(smol):
    prompt = ask("Name a colour.")
    plain = run(smol.generate(prompt, GenerationParams(max_tokens=4, logprobs=0)))
    assert plain.logprobs is not None
    first = bytes(plain.logprobs[0].bytes or [])
    token = smol.backend.engine.llm.tokenize(first, add_bos=False, special=False)[0]
    banned = run(
        smol.generate(prompt, GenerationParams(max_tokens=4, logprobs=0, logit_bias=((token, -100.0),)))
    )
    assert banned.logprobs is not None
    assert banned.logprobs[0].bytes != plain.logprobs[0].bytes


def test_logit_bias_outside_the_vocabulary_names_it(smol):
    with pytest.raises(InvalidRequestError) as caught:
        run(smol.generate(ask("Hi"), GenerationParams(max_tokens=4, logit_bias=((10**7, 5.0),))))
    assert caught.value.param == "logit_bias"


def test_penalties_reach_the_sampler(smol):
    """A greedy answer that writes "cat" over and over (39 times in 40 tokens, run together as
    "catcatcat...") stops repeating it under either penalty (4 times, then other words)."""
    prompt = ask("Write the word cat twenty times.")

    def cats(params: GenerationParams) -> int:
        return run(smol.generate(prompt, params)).text.lower().count("cat")

    assert cats(GenerationParams(max_tokens=40)) >= 12
    assert cats(GenerationParams(max_tokens=40, frequency_penalty=2.0)) <= 6
    assert cats(GenerationParams(max_tokens=40, presence_penalty=2.0)) <= 6


def test_a_batched_model_decodes_constrained_requests_unbatched():
    """parallel > 1 sends plain requests to the batcher; a grammar still holds on them."""
    from modelatlas.backends.declared import with_parallel
    from modelatlas.catalog.bundled import resolve_bundled

    record = with_parallel(resolve_bundled(SMOL), 4)
    model = load_model(record)
    fmt = ResponseFormat(type="json_schema", json_schema=SCHEMAS[1])
    out = run(model.generate(ask("Pick a colour."), GenerationParams(max_tokens=60, response_format=fmt)))
    jsonschema.validate(json.loads(out.text), SCHEMAS[1])
    run(model.aclose())


def test_a_backend_refuses_what_it_does_not_honour():
    from modelatlas.catalog.records import ModelRecord

    record = ModelRecord(id="test/echo", name="echo", backend="echo", mode="chat")
    model = load_model(record)
    with pytest.raises(InvalidRequestError) as caught:
        run(model.generate(ask("Hi"), GenerationParams(max_tokens=4, presence_penalty=1.0)))
    assert caught.value.param == "presence_penalty"


def test_sample_then_check_gives_the_full_masks_answer(smol):
    """grammar_decode checks the sampled token first and masks the vocabulary only when the
    grammar refuses it; greedy, that is the same answer as llama.cpp's full mask every step."""
    from modelatlas.backends import llama_adapter
    from modelatlas.backends.grammar_decode import sampled_tokens
    from modelatlas.backends.llamacpp_engine import Sampling

    run(smol.load())
    engine = smol.backend.engine
    gbnf = grammars.response_grammar(ResponseFormat(type="json_schema", json_schema=SCHEMAS[0]))
    assert gbnf is not None
    tokens = engine.chat_tokens([{"role": "user", "content": "Describe Ann, aged 31, as JSON."}])

    def answer(source) -> list[int]:
        out = []
        for token in source:
            if llama_adapter.ends_generation(engine.llm, token) or len(out) >= 60:
                break
            out.append(token)
        return out

    def full() -> list[int]:
        chain = engine.llm.generate(tokens, temp=0.0, top_k=1, grammar=llama_adapter.grammar(gbnf))
        return answer(chain)

    def lazy() -> list[int]:
        return answer(sampled_tokens(engine.llm, tokens, Sampling(60, 0.0, 1.0, (), 0, grammar=gbnf)))

    masked, checked = engine.submit(full).result(), engine.submit(lazy).result()
    assert len(masked) > 10
    assert checked == masked


def test_penalties_count_every_earlier_answer_token_as_openai_defines(smol):
    """Each greedy token under penalties is the argmax of the model's logits less, for every
    token already in the answer, frequency_penalty times its count plus presence_penalty once,
    recomputed here from the raw logits the token was chosen from (the whole answer, not
    llama-cpp-python's last 64 tokens); with a logit_bias added as OpenAI adds it."""
    import numpy as np

    from modelatlas.backends import llama_adapter
    from modelatlas.backends.grammar_decode import sampled_tokens
    from modelatlas.backends.llamacpp_engine import Sampling

    run(smol.load())
    engine = smol.backend.engine
    tokens = engine.chat_tokens([{"role": "user", "content": "Write the word cat twenty times."}])
    banned = engine.text_tokens(" cat")[-1]
    sampling = Sampling(
        80, 0.0, 1.0, (), 0, presence_penalty=0.3, frequency_penalty=0.2, logit_bias=((banned, -100.0),)
    )

    def decode() -> tuple[list[int], int]:
        answer: list[int] = []
        differs = 0
        for token in sampled_tokens(engine.llm, tokens, sampling):
            raw = llama_adapter.row_logits(engine.llm, -1).astype(np.float64)
            expected = raw.copy()
            expected[banned] -= 100.0
            for seen, times in Counter(answer).items():
                expected[seen] -= 0.2 * times + 0.3
            assert token == int(np.argmax(expected)), f"token {len(answer)}"
            differs += token != int(np.argmax(raw))
            if llama_adapter.ends_generation(engine.llm, token) or len(answer) >= 80:
                break
            answer.append(token)
        return answer, differs

    answer, differs = engine.submit(decode).result()
    assert len(answer) > 20 and banned not in answer
    assert differs > 0  # the adjustments changed some choices
