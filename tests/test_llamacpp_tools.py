"""Tool calling with local llama.cpp models: the template's tools, the calls parsed out of the
answer, the grammar that forces a call, and the refusal where a template has no tools.

The parser is tested on hand-written text (cut at every place, so a marker split across
chunks is covered); the rest runs the bundled Qwen2.5-Coder (its template takes tools, Hermes
style) through the Model wrapper, greedy and with few tokens, and SmolLM2 (no tools).
"""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from modelatlas.backends import tool_calls
from modelatlas.backends.tool_calls import HERMES, LLAMA_JSON
from modelatlas.backends.tool_grammar import grammar_for
from modelatlas.errors import InvalidRequestError
from modelatlas.loading import load_model
from modelatlas.parts import ToolCall
from modelatlas.structured import Tool
from modelatlas.types import Chunk, GenerationParams, Message
from tests.conftest import needs, run

CODER = "local/qwen2.5-coder-0.5b-instruct"
WEATHER = Tool(
    name="get_weather",
    description="Get the current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ADD = Tool(
    name="add",
    description="Add two integers",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
)
TOOLS = (WEATHER, ADD)
ASK_WEATHER = [Message.user("What is the weather in Paris right now?")]
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def params(**fields) -> GenerationParams:
    return GenerationParams(tools=TOOLS, **fields)


def parse(pieces: list[str], fmt=HERMES, **fields) -> list[Chunk]:
    async def chunks():
        for piece in pieces:
            yield Chunk(text=piece)
        yield Chunk(finish_reason="stop")

    async def gather():
        return [c async for c in tool_calls.parse_stream(chunks(), fmt, params(**fields))]

    return asyncio.run(gather())


def text_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


def calls_of(chunks: list[Chunk]) -> list[ToolCall]:
    return [call for c in chunks for call in c.tool_calls]


# -- the parser, on hand-written text ---------------------------------------------------------


def test_a_call_split_anywhere_comes_out_whole_in_one_chunk():
    answer = "Let me check. " + CALL
    for cut in range(1, len(answer)):
        chunks = parse([answer[:cut], answer[cut:]])
        (call,) = calls_of(chunks)
        assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
        assert call.id.startswith("call_") and len(call.id) > 10
        assert sum(1 for c in chunks if c.tool_calls) == 1
        assert text_of(chunks) == "Let me check."  # the space before the block goes with it
        assert chunks[-1].finish_reason == "tool_calls"


def test_plain_text_passes_at_once_and_only_a_possible_marker_is_held():
    async def first_out():
        gen = tool_calls.parse_stream(_forever(["Hello <tool", "ish> there"]), HERMES, params())
        return await gen.__anext__(), await gen.__anext__()

    first, second = asyncio.run(first_out())
    assert first.text == "Hello"  # "<tool" could be a marker, and the space before one is dropped
    assert second.text == " <toolish> there"


async def _forever(pieces):
    for piece in pieces:
        yield Chunk(text=piece)
    await asyncio.Event().wait()  # the generation goes on: nothing may wait for its end


def test_malformed_json_or_an_unknown_function_stays_text():
    broken = '<tool_call>\n{"name": "get_weather", "arguments": {"city": </tool_call>'
    unknown = '<tool_call>\n{"name": "launch", "arguments": {}}\n</tool_call>'
    for answer in (broken, unknown, "<tool_call> never closed"):
        chunks = parse([answer])
        assert calls_of(chunks) == [] and text_of(chunks) == answer
        assert chunks[-1].finish_reason == "stop"


def test_several_blocks_are_parallel_calls_unless_parallel_calls_are_off():
    second = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
    both = calls_of(parse([CALL + "\n" + second]))
    assert [c.name for c in both] == ["get_weather", "add"]
    assert json.loads(both[1].arguments) == {"a": 2, "b": 3} and both[0].id != both[1].id
    one = parse([CALL + "\n" + second], parallel_tool_calls=False)
    assert [c.name for c in calls_of(one)] == ["get_weather"] and text_of(one) == ""


def test_a_call_written_as_bare_or_fenced_json_is_a_call_and_code_is_not():
    fenced = '```json\n{\n  "name": "get_weather",\n  "arguments": {\n    "city": "Paris"\n  }\n}\n```'
    for answer in (fenced, '{"name": "add", "arguments": {"a": 1, "b": 2}}'):
        for cut in (1, 3, 8, len(answer) // 2):
            chunks = parse([answer[:cut], answer[cut:]])
            assert len(calls_of(chunks)) == 1 and text_of(chunks) == ""
    code = "```python\nprint(1)\n```"
    assert text_of(parse([code[:2], code[2:]])) == code
    for start_only in (" ", "```", "```json\n"):  # held as a possible call, given back at the end
        assert text_of(parse([start_only])) == start_only
    not_a_call = '{"city": "Paris"}'
    chunks = parse([not_a_call])
    assert text_of(chunks) == not_a_call and calls_of(chunks) == []


def test_llama_json_format_reads_parameters():
    answer = '{"name": "get_weather", "parameters": {"city": "Oslo"}}'
    (call,) = calls_of(parse([answer[:5], answer[5:]], fmt=LLAMA_JSON))
    assert json.loads(call.arguments) == {"city": "Oslo"}
    assert text_of(parse(["Sunny."], fmt=LLAMA_JSON)) == "Sunny."


# -- templates and grammars, from the files' headers (no model load) ------------------------------


def test_template_support_is_read_from_the_gguf_header(coder_path, smollm2_path):
    assert tool_calls.template_format(coder_path) == HERMES
    assert tool_calls.template_format(smollm2_path) is None
    assert tool_calls.format_of("{{ messages }}") is None


def test_qwen_renders_tools_an_earlier_call_and_its_result(coder_path):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = tool_calls.chat_template(coder_path)
    formatter = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="")
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    prompt = [*ASK_WEATHER, Message.assistant("", [call]), Message.tool("call_1", "18 C and sunny")]
    from modelatlas.backends.messages import as_messages

    messages = tool_calls.template_messages(as_messages(prompt))
    text = formatter(messages=messages, tools=tool_calls.rendered_tools(params())).prompt
    assert '"name": "add"' in text and "<tools>" in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>' in text
    assert "<tool_response>\n18 C and sunny\n</tool_response>" in text
    assert tool_calls.rendered_tools(params(tool_choice="none")) is None


@needs("llama_cpp")
def test_grammar_only_where_a_call_is_forced():
    from modelatlas.backends import llama_adapter

    assert grammar_for(params()) is None and grammar_for(params(tool_choice="none")) is None
    required = grammar_for(params(tool_choice="required"))
    named = grammar_for(params(tool_choice="add", parallel_tool_calls=False))
    assert required and '"\\"get_weather\\""' in required and '"\\"add\\""' in required
    assert named and "get_weather" not in named and named.startswith("root ::= tool-block\n")
    assert required.startswith('root ::= tool-block ("\\n" tool-block)')
    for gbnf in (required, named):
        llama_adapter.grammar(gbnf)  # llama.cpp parses it


def test_a_strict_tool_with_an_unenforceable_keyword_is_refused():
    strict = Tool(
        name="count",
        parameters={"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
        strict=True,
    )
    with pytest.raises(InvalidRequestError) as err:
        grammar_for(GenerationParams(tools=(strict,), tool_choice="required"))
    assert err.value.param == "tools" and "minimum" in str(err.value)
    loose = GenerationParams(tools=(strict.model_copy(update={"strict": False}),), tool_choice="count")
    assert grammar_for(loose)


# -- the models ----------------------------------------------------------------------------------


@needs("llama_cpp")
def test_a_model_whose_template_has_no_tools_refuses_them():
    model = load_model("local/smollm2-135m-instruct")
    try:
        with pytest.raises(InvalidRequestError) as err:
            run(model.generate(ASK_WEATHER, GenerationParams(tools=TOOLS, max_tokens=4)))
        assert err.value.param == "tools"
        assert "no tool support" in str(err.value) and "qwen2.5-coder" in str(err.value.hint)
        plain = run(
            model.generate(ASK_WEATHER, GenerationParams(tools=TOOLS, tool_choice="none", max_tokens=2))
        )
        assert plain.tool_calls == ()
    finally:
        run(model.aclose())


@pytest.fixture(scope="module")
def coder():
    model = load_model(CODER)
    yield model
    run(model.aclose())


def valid(call: ToolCall) -> dict:
    arguments = json.loads(call.arguments)
    schema = {tool.name: tool.parameters for tool in TOOLS}[call.name]
    jsonschema.validate(arguments, schema)
    return arguments


@pytest.mark.slow
@needs("llama_cpp")
def test_auto_calls_the_tool_a_prompt_clearly_needs(coder):
    out = run(coder.generate(ASK_WEATHER, params(max_tokens=40)))
    (call,) = out.tool_calls
    assert call.name == "get_weather" and valid(call)["city"] == "Paris"
    assert out.finish_reason == "tool_calls"


@pytest.mark.slow
@needs("llama_cpp")
def test_required_streams_one_well_formed_call(coder):
    async def chunks():
        return [c async for c in coder.stream(ASK_WEATHER, params(max_tokens=40, tool_choice="required"))]

    got = run(chunks())
    with_calls = [c for c in got if c.tool_calls]
    assert len(with_calls) == 1
    for call in with_calls[0].tool_calls:
        valid(call)
    assert got[-1].finish_reason == "tool_calls" and text_of(got).strip() == ""


@pytest.mark.slow
@needs("llama_cpp")
def test_a_named_function_is_called_even_where_it_does_not_fit(coder):
    out = run(coder.generate(ASK_WEATHER, params(max_tokens=40, tool_choice="add")))
    assert out.tool_calls and all(call.name == "add" for call in out.tool_calls)
    assert all(isinstance(valid(call)["a"], int) for call in out.tool_calls)


@pytest.mark.slow
@needs("llama_cpp")
def test_none_answers_in_text(coder):
    out = run(coder.generate(ASK_WEATHER, params(max_tokens=8, tool_choice="none")))
    assert out.text.strip() and out.tool_calls == () and out.finish_reason != "tool_calls"


@pytest.mark.slow
@needs("llama_cpp")
def test_a_tool_result_turn_is_answered_in_text(coder):
    # tool_choice "none" for the answer turn: with the tools still offered, this 0.5B model
    # calls get_weather again (greedy, every wording tried). Even so it first echoes the call
    # as JSON text, then answers from the result: the 18 degrees come from the tool message.
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    result = Message.tool("call_1", "It is 18 degrees Celsius and sunny in Paris.")
    prompt = [*ASK_WEATHER, Message.assistant("", [call]), result]
    out = run(coder.generate(prompt, params(max_tokens=40, tool_choice="none")))
    assert out.tool_calls == () and "18" in out.text


@needs("llama_cpp")
def test_llama_json_grammar_forces_a_bare_call_with_parameters():
    from modelatlas.backends import llama_adapter

    gbnf = grammar_for(params(tool_choice="get_weather"), LLAMA_JSON)
    assert gbnf and gbnf.startswith("root ::= tool-call\n") and "<tool_call>" not in gbnf
    assert '"\\"parameters\\""' in gbnf and '"\\"arguments\\""' not in gbnf
    llama_adapter.grammar(gbnf)


def test_a_template_with_tools_in_an_unknown_format_is_refused_as_such(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "mistral-like.gguf"  # a real GGUF header whose template reads tools
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_chat_template("{% for t in tools %}[AVAILABLE_TOOLS]{{ t }}{% endfor %}[TOOL_CALLS]")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    with pytest.raises(InvalidRequestError) as err:
        tool_calls.check_tools("local/x", str(path), params())
    assert err.value.param == "tools" and "cannot parse the calls" in str(err.value)
    assert tool_calls.check_tools("local/x", str(path), params(tool_choice="none")) is None
