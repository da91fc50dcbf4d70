"""Tool use and JSON in evaluations: the dataset fields, the four metrics, and a real run.

The metrics are scored on hand-written outputs; the dataset fields are read from real files
(bad rows answer with their file and line); the run sends the example dataset's items to the
bundled Qwen2.5-Coder (tools through its chat template) and SmolLM2 (no tool support: its tool
items are errors of their own, its JSON items are answered) and reads the four metrics back
from the leaderboard and the stored samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelatlas.backends.echo import EchoBackend
from modelatlas.backends.registry import register as register_backend
from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.cli.main import app
from modelatlas.errors import ConfigError, DatasetError
from modelatlas.evals import records
from modelatlas.evals.datasets import load_dataset
from modelatlas.evals.metrics import Context, get_metric
from modelatlas.evals.metrics.structured import json_equal
from modelatlas.evals.types import Item, Output
from modelatlas.parts import ToolCall
from modelatlas.structured import ResponseFormat, Tool
from modelatlas.types import Chunk, Usage
from tests.conftest import run

EXAMPLE = Path(__file__).parent.parent / "examples" / "tools_and_json.jsonl"
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
WEATHER = Tool(
    name="get_weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
METRICS = ["json_valid", "json_schema", "tool_call_match", "tool_call_rate"]


def score(metric: str, item: Item, output: Output, **options):
    return run(get_metric(metric, **options).score(item, output, Context()))


def text(answer: str) -> Output:
    return Output(text=answer)


def calls(*made: tuple[str, str]) -> Output:
    return Output(tool_calls=[ToolCall(id=f"call_{i}", name=n, arguments=a) for i, (n, a) in enumerate(made)])


def schema_item(schema=PERSON) -> Item:
    return Item(id="p", input="x", response_format=ResponseFormat(type="json_schema", json_schema=schema))


def tool_item(expected, tools=(WEATHER,)) -> Item:
    return Item(id="t", input="x", tools=list(tools), metadata={"expected_tool_call": expected})


# -- json_valid and json_schema --------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "valid"),
    [
        ('{"name": "Ann", "age": 3}', 1.0),
        ("[1, 2]", 1.0),
        ('{"name": "Ann",', 0.0),
        ("Sure! Here it is.", 0.0),
        ("", 0.0),
        ("NaN", 0.0),  # Python's json reads it; JSON has no NaN
        ('```json\n{"a": 1}\n```', 0.0),  # strict by default, as an application's json.loads
    ],
)
def test_json_valid_is_what_json_loads_accepts(answer, valid):
    got = score("json_valid", Item(id="a", input="x"), text(answer))
    assert got.value == valid
    assert ("problem" in got.data) == (valid == 0.0)


def test_json_valid_fence_option_and_json_object_wants_an_object():
    fenced = text('```json\n{"a": 1}\n```')
    assert score("json_valid", Item(id="a", input="x"), fenced, fence=True).value == 1.0
    as_object = Item(id="o", input="x", response_format=ResponseFormat(type="json_object"))
    assert score("json_valid", as_object, text("[1]")).value == 0.0
    assert score("json_valid", as_object, text('{"a": [1]}')).value == 1.0


def test_json_schema_validates_against_the_items_response_format():
    item = schema_item()
    assert score("json_schema", item, text('{"name": "Ann", "age": 30}')).value == 1.0
    wrong = score("json_schema", item, text('{"name": "Ann", "age": "30"}'))
    assert wrong.value == 0.0 and wrong.data["problem"].startswith("age:")
    missing = score("json_schema", item, text('{"name": "Ann"}'))
    assert missing.value == 0.0 and "'age' is a required property" in missing.data["problem"]
    assert score("json_schema", item, text("not json")).value == 0.0
    # JSON valid yet not the schema's: json_valid says 1, json_schema 0
    assert score("json_valid", item, text('{"name": 1}')).value == 1.0


def test_json_schema_from_the_option_or_the_items_own_field():
    option = {"type": "array", "items": {"type": "integer"}, "maxItems": 2}
    plain = Item(id="a", input="x")
    assert score("json_schema", plain, text("[1, 2]"), json_schema=option).value == 1.0
    assert score("json_schema", plain, text("[1, 2, 3]"), json_schema=option).value == 0.0
    own = Item(id="b", input="x", metadata={"json_schema": {"type": "object", "required": ["answer"]}})
    assert score("json_schema", own, text('{"answer": 7}')).value == 1.0
    assert score("json_schema", own, text('{"answer2": 7}')).value == 0.0


def test_json_schema_checks_its_schema_before_a_run():
    with pytest.raises(ConfigError, match="option json_schema is not a valid JSON schema"):
        get_metric("json_schema", json_schema={"type": "bogus-type"})
    with pytest.raises(ConfigError, match="no schema to validate against"):
        get_metric("json_schema").check([Item(id="a", input="x")])
    with pytest.raises(DatasetError, match=r"item 'b' \(line 4\): field 'json_schema' is not a valid"):
        get_metric("json_schema").check(
            [Item(id="b", input="x", line=4, metadata={"json_schema": {"type": 5}})]
        )


def test_items_a_metric_does_not_apply_to_are_skipped_not_errors():
    skipped = [
        score("json_schema", Item(id="a", input="x"), text("{}")),  # no schema anywhere
        score("json_valid", tool_item(None), text("Hello")),  # a tool-use item: its answer is a call
        score("tool_call_match", Item(id="a", input="x"), text("")),  # nothing expected
        score("tool_call_rate", Item(id="a", input="x"), text("")),  # no tools offered
    ]
    for got in skipped:
        assert got.value is None and got.error is None and got.data["skipped"] and not got.ok


# -- tool_call_match and tool_call_rate ------------------------------------------------------


def test_tool_call_match_wants_the_right_function_and_equal_arguments():
    item = tool_item({"name": "get_weather", "arguments": {"city": "Paris"}})
    assert score("tool_call_match", item, calls(("get_weather", '{"city": "Paris"}'))).value == 1.0
    assert score("tool_call_match", item, calls(("get_weather", '{ "city":"Paris" }'))).value == 1.0
    assert score("tool_call_match", item, calls(("get_weather", '{"city": "Rome"}'))).value == 0.0
    assert score("tool_call_match", item, calls(("get_time", '{"city": "Paris"}'))).value == 0.0
    assert score("tool_call_match", item, calls(("get_weather", '{"city": "Paris"'))).value == 0.0  # bad JSON
    assert score("tool_call_match", item, text("It is sunny in Paris.")).value == 0.0  # no call
    extra = calls(("get_weather", '{"city": "Paris", "unit": "celsius"}'))
    assert score("tool_call_match", item, extra).value == 0.0
    assert score("tool_call_match", item, extra, extra_arguments=True).value == 1.0


def test_json_equality_tells_booleans_from_numbers():
    assert json_equal({"n": 1}, {"n": 1.0}) and json_equal([{"a": None}], [{"a": None}])
    assert not json_equal({"n": 1}, {"n": True}) and not json_equal({"n": 0}, {"n": False})
    assert not json_equal({"n": "1"}, {"n": 1}) and not json_equal([1, 2], [2, 1])
    item = tool_item({"name": "get_weather", "arguments": {"city": "Paris", "days": 1}})
    assert (
        score("tool_call_match", item, calls(("get_weather", '{"city": "Paris", "days": true}'))).value == 0.0
    )


def test_tool_call_match_by_argument_schema():
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "pattern": "^Par"}},
        "required": ["city"],
    }
    item = tool_item({"name": "get_weather", "arguments_schema": schema})
    assert (
        score("tool_call_match", item, calls(("get_weather", '{"city": "Paris", "unit": "c"}'))).value == 1.0
    )
    assert score("tool_call_match", item, calls(("get_weather", '{"city": "Lyon"}'))).value == 0.0
    assert score("tool_call_match", item, calls(("get_weather", "{}")), partial=True).value == 0.5
    name_only = tool_item({"name": "get_weather"})
    assert score("tool_call_match", name_only, calls(("get_weather", '{"city": "anywhere"}'))).value == 1.0


def test_parallel_calls_in_any_order_and_partial_credit():
    item = tool_item(
        [
            {"name": "get_weather", "arguments": {"city": "Berlin"}},
            {"name": "get_weather", "arguments": {"city": "Madrid"}},
        ]
    )
    swapped = calls(("get_weather", '{"city": "Madrid"}'), ("get_weather", '{"city": "Berlin"}'))
    assert score("tool_call_match", item, swapped).value == 1.0
    assert score("tool_call_match", item, swapped, ordered=True).value == 0.0
    assert score("tool_call_match", item, swapped, ordered=True, partial=True).value == 0.5  # names right
    one = calls(("get_weather", '{"city": "Berlin"}'))
    assert score("tool_call_match", item, one).value == 0.0
    assert score("tool_call_match", item, one, partial=True).value == 0.5  # one of two expected
    three = calls(*swapped_calls(), ("get_weather", '{"city": "Oslo"}'))
    assert score("tool_call_match", item, three, partial=True).value == pytest.approx(
        2 / 3
    )  # an extra call costs
    assert get_metric("tool_call_match").binary and not get_metric("tool_call_match", partial=True).binary


def swapped_calls():
    return [("get_weather", '{"city": "Madrid"}'), ("get_weather", '{"city": "Berlin"}')]


def test_an_item_expecting_no_call_rewards_abstaining():
    item = tool_item(None)
    assert score("tool_call_match", item, text("Bonjour !")).value == 1.0
    assert score("tool_call_match", item, calls(("get_weather", '{"city": "Paris"}'))).value == 0.0
    assert score("tool_call_rate", item, text("Bonjour !")).value == 0.0
    assert score("tool_call_rate", item, calls(("get_weather", "{}"))).value == 1.0


def test_tool_call_match_needs_an_expectation_on_some_item():
    with pytest.raises(ConfigError, match="needs an 'expected_tool_call' field"):
        get_metric("tool_call_match").check([Item(id="a", input="x")])
    get_metric("tool_call_match").check([tool_item(None)])  # "no call" is an expectation too


# -- the dataset fields ----------------------------------------------------------------------


def write_rows(tmp_path, rows, name="d.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_fields_are_read_in_openais_shapes_and_ours(tmp_path):
    rows = [
        {
            "id": "a",
            "input": "weather?",
            "tools": [
                {"type": "function", "function": WEATHER.model_dump()},
                {"name": "noop", "description": "d"},
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "expected_tool_call": {
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
        },
        {
            "id": "b",
            "input": "json",
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "p", "schema": PERSON, "strict": True},
            },
        },
        {"id": "c", "input": "any", "response_format": {"type": "text"}, "tool_choice": "none"},
    ]
    a, b, c = load_dataset(write_rows(tmp_path, rows)).items
    assert [t.name for t in a.tools] == ["get_weather", "noop"] and a.tools[0] == WEATHER
    assert a.tool_choice == "get_weather" and "tools" not in a.metadata
    expected = get_metric("tool_call_match")
    assert run(expected.score(a, calls(("get_weather", '{"city": "Paris"}')), Context())).value == 1.0
    assert b.response_format == ResponseFormat(type="json_schema", json_schema=PERSON, name="p", strict=True)
    assert c.response_format is None and c.tool_choice == "none" and not c.tools


def test_csv_cells_hold_the_fields_as_json_text(tmp_path):
    path = tmp_path / "d.csv"
    tools = json.dumps([WEATHER.openai()]).replace('"', '""')
    fmt = json.dumps({"type": "json_object"}).replace('"', '""')
    call = json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}}).replace('"', '""')
    path.write_text(f'input,tools,response_format,expected_tool_call\nhi,"{tools}","{fmt}","{call}"\n')
    (item,) = load_dataset(path).items
    assert item.tools == [WEATHER] and item.response_format == ResponseFormat(type="json_object")
    assert (
        run(
            get_metric("tool_call_match").score(item, calls(("get_weather", '{"city":"Oslo"}')), Context())
        ).value
        == 1.0
    )


def test_a_plain_dataset_hashes_as_before(tmp_path):
    path = write_rows(tmp_path, [{"input": "q", "reference": "a"}])
    item = load_dataset(path).items[0]
    assert set(item.model_dump()) == {
        "id",
        "input",
        "messages",
        "audio",
        "images",
        "reference",
        "choices",
        "answer",
        "metadata",
        "line",
    }
    # The hash of this one row, as datasets were hashed before items had tools (commit be8e2ea).
    assert load_dataset(path).hash == "8bb429cd203fbbc0214bb75e323944d27a88d1f82f0b0df2242de52d7e326c2f"


BAD_ROWS = [
    ({"tools": {"name": "x"}}, "field 'tools' must be a list of tools, got an object"),
    ({"tools": ["get_weather"]}, r"field tools\[0\] must be a tool \(an object\), got a str"),
    ({"tools": [{"description": "no name"}]}, r"field tools\[0\]\.name: Field required"),
    ({"tools": [{"name": "has space"}]}, r"field tools\[0\]\.name: String should match pattern"),
    (
        {"tools": [{"name": "f", "parameters": {"type": "objekt"}}]},
        r"field 'tools\[0\]\.parameters' is not a valid JSON schema",
    ),
    ({"tools": [{"name": "f"}, {"name": "f"}]}, r"field tools\[1\] repeats the tool name 'f'"),
    (
        {"tools": [{"type": "retrieval", "function": {"name": "f"}}]},
        r"field tools\[0\] must be \{'type': 'function'",
    ),
    (
        {"tools": [{"name": "f"}], "tool_choice": "g"},
        "field 'tool_choice' names 'g', which is neither auto, none, required nor one of the row's "
        "tools \\(f\\)",
    ),
    ({"tool_choice": "required"}, "field 'tool_choice' is 'required', but the row has no tools"),
    (
        {"tool_choice": 3},
        "field 'tool_choice' must be 'auto', 'none', 'required' or a tool's name, got a number",
    ),
    ({"response_format": "json"}, "field 'response_format' must be"),
    (
        {"response_format": {"type": "json_schema"}},
        "field response_format.json_schema must be an object with a 'schema'",
    ),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 1}}}},
        "field 'response_format.json_schema.schema' is not a valid JSON schema",
    ),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {}, "strict": "maybe"}}},
        r"field response_format.json_schema\.strict: Input should be a valid boolean",
    ),
    (
        {"tools": [{"name": "f"}], "expected_tool_call": {"name": "g"}},
        "field 'expected_tool_call' names 'g', which is not among the row's tools \\(f\\)",
    ),
    ({"expected_tool_call": {"arguments": {}}}, r"field expected_tool_call\.name: Field required"),
    (
        {"expected_tool_call": [{"name": "f", "arguments": {}, "arguments_schema": {}}]},
        r"field expected_tool_call\[0\] has both 'arguments' and 'arguments_schema'",
    ),
    (
        {"expected_tool_call": {"name": "f", "arguments": "{oops"}},
        r"field 'expected_tool_call\.arguments' is not valid JSON",
    ),
    (
        {"expected_tool_call": {"name": "f", "arguments": [1]}},
        r"field expected_tool_call\.arguments: Input should be a valid dictionary",
    ),
]


@pytest.mark.parametrize(("bad", "message"), BAD_ROWS)
def test_a_bad_field_names_the_file_line_and_field(tmp_path, bad, message):
    path = write_rows(tmp_path, [{"input": "fine"}, {"input": "q", **bad}])
    with pytest.raises(DatasetError, match=message) as caught:
        load_dataset(path)
    assert str(caught.value).startswith(f"{path}:2: ")


def test_the_example_dataset_loads_and_mixes_tools_and_json():
    items = load_dataset(EXAMPLE).items
    assert 12 <= len(items) <= 20
    with_tools = [i for i in items if i.tools]
    with_schema = [i for i in items if i.response_format and i.response_format.type == "json_schema"]
    no_call = [
        i for i in items if "expected_tool_call" in i.metadata and i.metadata["expected_tool_call"] is None
    ]
    assert len(with_tools) >= 6 and len(with_schema) >= 4 and len(no_call) >= 2
    assert {i.tool_choice for i in items} >= {None, "required", "calculate"}
    assert any(isinstance(i.metadata.get("expected_tool_call"), list) for i in items)  # parallel calls
    assert any(m.role == "tool" for i in items for m in i.messages or [])  # a tool result turn


# -- a run: the fields go with the call, a model that refuses them errs per item ------------------


def test_a_model_that_honours_no_tools_errs_on_those_items_alone(tmp_path):
    user.add(ModelRecord(id="test/echo", backend="echo", options={"reply": '{"name": "Ann", "age": 3}'}))
    rows = [
        {
            "id": "call",
            "input": "weather?",
            "tools": [WEATHER.openai()],
            "expected_tool_call": {"name": "get_weather"},
        },
        {"id": "plain", "input": "json please", "json_schema": PERSON},
    ]
    result = CliRunner().invoke(
        app, ["eval", str(write_rows(tmp_path, rows)), "-m", "test/echo", "--json", *metric_flags()]
    )
    assert result.exit_code == 0, result.output
    (arm,) = json.loads(result.output)["models"]
    assert arm["n"] == 2 and arm["errors"] == 1
    assert arm["metrics"]["json_schema"]["mean"] == 1.0 and arm["metrics"]["tool_call_match"]["mean"] is None
    by_id = {r.item_id: r for r in records.load_items(records.list_runs()[0].id)}
    assert "'tools' is not supported by test/echo" in by_id["call"].output.error
    assert by_id["plain"].output.error is None and by_id["plain"].output.tool_calls is None


class ToolEcho(EchoBackend):
    """A deterministic model that calls the first tool it is offered, with ``{"city": "Paris"}``
    (and otherwise answers as echo does): the runner's handling of calls without a real model."""

    name = "tool-echo"
    honours = frozenset({"tools", "tool_choice", "parallel_tool_calls"})

    async def stream(self, prompt, params):
        if not params.tools:
            async for chunk in super().stream(prompt, params):
                yield chunk
            return
        call = ToolCall(id="call_0", name=params.tools[0].name, arguments='{"city": "Paris"}')
        yield Chunk(tool_calls=(call,))
        yield Chunk(finish_reason="tool_calls", usage=Usage(input_tokens=3, output_tokens=9))


def test_the_calls_a_model_makes_reach_the_metrics_the_store_and_the_samples(tmp_path):
    register_backend("tool-echo", ToolEcho)
    user.add(ModelRecord(id="test/caller", backend="tool-echo"))
    rows = [
        {"id": "paris", "input": "weather?", "tools": [WEATHER.openai()], "expected_tool_call": WANT_PARIS},
        {"id": "rome", "input": "weather?!", "tools": [WEATHER.openai()], "expected_tool_call": WANT_ROME},
        {"id": "none", "input": "hi", "tools": [WEATHER.openai()], "expected_tool_call": None},
    ]
    dataset, samples = write_rows(tmp_path, rows), tmp_path / "samples.jsonl"
    for _ in range(2):  # the second run answers from the response cache: the calls are kept there too
        args = ["eval", str(dataset), "-m", "test/caller", "--json", "--samples", str(samples)]
        result = CliRunner().invoke(app, [*args, "--metric", "tool_call_match", "--metric", "tool_call_rate"])
        assert result.exit_code == 0, result.output
        (arm,) = json.loads(result.output)["models"]
        # Paris is right; Rome's arguments and the call where none was wanted are wrong
        assert arm["metrics"]["tool_call_match"]["mean"] == pytest.approx(1 / 3)
        assert arm["metrics"]["tool_call_rate"]["mean"] == 1.0
        stored = [json.loads(line) for line in samples.read_text().splitlines()]
        assert [r["tool_calls"][0]["name"] for r in stored] == ["get_weather"] * 3
        assert json.loads(stored[0]["tool_calls"][0]["arguments"]) == {"city": "Paris"}
    last = max(records.list_runs(), key=lambda r: r.created_at or "")
    outputs = [r.output for r in records.load_items(last.id)]
    assert all(o.cached and o.tool_calls and o.tool_calls[0].name == "get_weather" for o in outputs)


WANT_PARIS = {"name": "get_weather", "arguments": {"city": "Paris"}}
WANT_ROME = {"name": "get_weather", "arguments": {"city": "Rome"}}


def metric_flags() -> list[str]:
    return [flag for name in METRICS for flag in ("--metric", name)]


QWEN = "local/qwen2.5-coder-0.5b-instruct"
SMOL = "local/smollm2-135m-instruct"
PICKED = ("weather-paris", "no-call-capital", "json-person", "json-sentiment")


def test_bundled_models_on_the_example_items_show_the_four_metrics(tmp_path):
    rows = [json.loads(line) for line in EXAMPLE.read_text().splitlines() if json.loads(line)["id"] in PICKED]
    dataset, samples = write_rows(tmp_path, rows, "tools_and_json.jsonl"), tmp_path / "samples.jsonl"
    args = [
        "eval",
        str(dataset),
        "-m",
        QWEN,
        "-m",
        SMOL,
        "--max-tokens",
        "96",
        "--json",
        "--samples",
        str(samples),
    ]
    result = CliRunner().invoke(app, [*args, *metric_flags()])
    assert result.exit_code == 0, result.output
    arms = {arm["model_id"]: arm for arm in json.loads(result.output)["models"]}
    qwen, smol = arms[QWEN], arms[SMOL]
    assert qwen["errors"] == 0 and smol["errors"] == 2  # SmolLM2's template has no tools
    # constrained decoding: both models' JSON items parse and keep their schema
    for arm in (qwen, smol):
        assert arm["metrics"]["json_valid"]["mean"] == 1.0 and arm["metrics"]["json_schema"]["mean"] == 1.0
        assert arm["metrics"]["json_schema"]["n"] == 2
    assert qwen["metrics"]["tool_call_match"]["n"] == 2 and qwen["metrics"]["tool_call_rate"]["n"] == 2
    assert smol["metrics"]["tool_call_match"]["mean"] is None
    stored = {
        json.loads(line)["item_id"] + "@" + json.loads(line)["model"]: json.loads(line)
        for line in samples.read_text().splitlines()
    }
    weather = stored[f"weather-paris@{QWEN}"]
    if weather["scores"]["tool_call_rate"] == 1.0:  # the call the model made survives into the samples
        assert weather["tool_calls"][0]["name"] == "get_weather" and json.loads(
            weather["tool_calls"][0]["arguments"]
        )
    wide = {"COLUMNS": "220"}  # the table names the models in full
    board = CliRunner().invoke(app, ["runs", "leaderboard", "--metric", "tool_call_match"], env=wide)
    assert board.exit_code == 0 and "qwen2.5-coder" in board.output and "tool_call_match" in board.output
    for metric in METRICS:
        listed = json.loads(
            CliRunner().invoke(app, ["runs", "leaderboard", "--metric", metric, "--json"]).output
        )
        assert listed["metric"] == metric and set(listed["metrics"]) >= set(METRICS)
        assert {e["model_id"] for e in listed["entries"]} == {QWEN, SMOL}


def test_the_html_report_shows_a_skipped_score_as_a_dash_not_an_error():
    from modelatlas.evals.report_html import _cell
    from modelatlas.evals.types import ItemResult, Score

    scores = {"json_schema": Score(data={"skipped": "no schema"}), "json_valid": Score(error="boom")}
    cell = _cell(ItemResult(run_id="r", model="m", item_id="a", index=0, output=text("{}"), scores=scores))
    assert cell is not None and cell["scores"] == "json_schema: -, json_valid: error"
