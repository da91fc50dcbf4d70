"""Metrics of what applications need from an answer: JSON that parses and keeps its schema, and
the right tool calls.

- ``json_valid``: 1 when the answer parses as JSON (an object, where the item's
  ``response_format`` is ``json_object``). Strict by default, as an application's ``json.loads``
  is: a Markdown fence around it fails unless the option ``fence`` is on.
- ``json_schema``: 1 when the answer parses and validates (``jsonschema``, formats checked)
  against the schema: the option ``json_schema``, else the item's ``response_format`` schema,
  else a ``json_schema`` field on the item.
- ``tool_call_match``: 1 when the model made the item's ``expected_tool_call`` (evals.structured_rows):
  the right functions, each with arguments JSON-equal to the expected ones (or valid against
  their ``arguments_schema``); parallel calls in any order unless ``ordered``; ``null`` expects no
  call. ``partial`` gives each expected call 0.5 for its name and 1 with its arguments, over
  the larger of the calls expected and made (so a missing and an extra call both cost).
- ``tool_call_rate``: 1 when the model made a tool call, 0 when it answered in text. It
  describes behaviour and is no verdict: with items that expect no call (which a model gets
  right by not calling), read it beside ``tool_call_match``.

An item a metric does not apply to is skipped (a Score with neither value nor error, and the
reason in ``data["skipped"]``): it counts in neither the mean nor the errors. ``json_valid`` and
``json_schema`` skip tool-use items (tools and no JSON response format: the answer is a call);
``json_schema`` skips items without a schema, ``tool_call_match`` items without an
``expected_tool_call``, ``tool_call_rate`` items that offer no tools. A model that refuses an
item's tools or format has that error as the item's output, and every metric records it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import field_validator

from modelatlas.errors import ConfigError, DatasetError
from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.options import MetricOptions
from modelatlas.evals.metrics.text import require
from modelatlas.evals.structured_rows import EXPECTED, ExpectedCall, check_schema, expected_calls
from modelatlas.evals.types import Item, Output, Score
from modelatlas.parts import ToolCall

SCHEMA_FIELD = "json_schema"  # an item's own schema (when it has no response_format schema)


def skipped(reason: str) -> Score:
    """A score for an item the metric does not apply to: in neither the mean nor the errors."""
    return Score(data={"skipped": reason})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str, fence: bool = False) -> tuple[Any, str | None]:
    """The answer's JSON value and None, or None and why it is not JSON."""
    text = text.strip()
    if fence and text.startswith("```") and text.endswith("```") and len(text) > 6:
        text = text[3:-3].removeprefix("json").removeprefix("JSON").strip()
    if not text:
        return None, "the answer is empty"
    try:
        return json.loads(text, parse_constant=_no_constant), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return None, f"not JSON: {exc}"


def wants_call(item: Item) -> bool:
    """A tool-use item: it offers tools and asks for no JSON format, so its answer is a call."""
    return bool(item.tools) and not (item.response_format and item.response_format.constrains)


class JsonOptions(MetricOptions):
    fence: bool = False  # accept an answer wrapped in a ```json fence (chat models often add one)


class JsonValid(Metric):
    name = "json_valid"
    Options = JsonOptions
    options: JsonOptions
    needs_reference = False
    binary = True

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if wants_call(item):
            return skipped("a tool-use item: its answer is a call (see tool_call_match)")
        value, problem = parse_json(output.text, self.for_context(ctx).options.fence)
        if problem:
            return Score(value=0.0, data={"problem": problem})
        fmt = item.response_format
        if fmt is not None and fmt.type == "json_object" and not isinstance(value, dict):
            return Score(
                value=0.0, data={"problem": f"JSON {type(value).__name__}, not the object asked for"}
            )
        return Score(value=1.0)


class JsonSchemaOptions(JsonOptions):
    json_schema: dict[str, Any] | None = None  # None: each item's response_format schema (or field)

    @field_validator("json_schema")
    @classmethod
    def _valid(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            try:
                check_schema(schema, "json_schema", "the option")
            except DatasetError as exc:
                raise ValueError(exc.message.removeprefix("the option: field 'json_schema' ")) from None
        return schema


def item_schema(item: Item) -> dict[str, Any] | None:
    """The schema an item's answer must keep: its response format's, else its own field."""
    fmt = item.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.json_schema is not None:
        return fmt.json_schema
    own = item.metadata.get(SCHEMA_FIELD)
    return own if isinstance(own, dict) else None


class JsonSchema(Metric):
    name = "json_schema"
    Options = JsonSchemaOptions
    options: JsonSchemaOptions
    needs_reference = False
    binary = True

    def check(self, items: Sequence[Item] | None = None) -> None:
        """Fail before a run: no schema anywhere, or an item's own schema that is no schema."""
        if self.options.json_schema is not None or items is None:
            return
        for item in items:
            if SCHEMA_FIELD in item.metadata:
                check_schema(
                    item.metadata[SCHEMA_FIELD], SCHEMA_FIELD, f"item {item.id!r} (line {item.line})"
                )
        if not any(item_schema(i) for i in items):
            raise ConfigError(
                "The metric json_schema has no schema to validate against: no item has a "
                f"response_format json_schema or a {SCHEMA_FIELD!r} field.",
                hint="Give the items a response_format of type json_schema, or the option json_schema.",
            )

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        options = self.for_context(ctx).options
        schema = options.json_schema or item_schema(item)
        if schema is None:
            return skipped("the item has no schema")
        if options.json_schema is None and wants_call(item):
            return skipped("a tool-use item: its answer is a call (see tool_call_match)")
        value, problem = parse_json(output.text, options.fence)
        if problem:
            return Score(value=0.0, data={"problem": problem})
        first = schema_error(schema, value)
        return Score(value=0.0, data={"problem": first}) if first else Score(value=1.0)


def schema_error(schema: dict[str, Any], value: Any) -> str | None:
    """The first way ``value`` breaks ``schema`` (its path and message), or None when it keeps it."""
    jsonschema = require("jsonschema")
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    at = "/".join(str(p) for p in error.absolute_path)
    return f"{at or 'the answer'}: {error.message}"[:300]


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: 1 and 1.0 are, True and 1 are not (Python's == says they are)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


class ToolCallMatchOptions(MetricOptions):
    partial: bool = False  # credit per call: 0.5 for its name, 1 with its arguments
    ordered: bool = False  # parallel calls must come in the expected order
    extra_arguments: bool = False  # a made call may pass arguments the expected one does not name


class ToolCallMatch(Metric):
    name = "tool_call_match"
    bounds = (0.0, 1.0)
    Options = ToolCallMatchOptions
    options: ToolCallMatchOptions
    needs_reference = False

    @property
    def binary(self) -> bool:  # type: ignore[override]
        """Values are 0 or 1, so McNemar's test applies, only without partial credit."""
        return not self.options.partial

    def check(self, items: Sequence[Item] | None = None) -> None:
        """Fail before a run when no item expects anything (the metric would score none)."""
        if items is not None and not any(EXPECTED in i.metadata for i in items):
            raise ConfigError(
                f"The metric tool_call_match needs an {EXPECTED!r} field on the items it scores; "
                "no item has one.",
                hint='For example: "expected_tool_call": {"name": "get_weather", "arguments": {"city": '
                '"Paris"}} (null when the right answer is no call).',
            )

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if EXPECTED not in item.metadata:
            return skipped(f"the item has no {EXPECTED}")
        options = self.for_context(ctx).options
        expected = expected_calls(item.metadata[EXPECTED], f"item {item.id!r}")
        made = list(output.tool_calls or [])
        data: dict[str, Any] = {"expected": [c.name for c in expected], "made": [c.name for c in made]}
        if not expected or not made:
            return Score(value=float(not expected and not made), data=data)
        credit = [[call_credit(e, m, options.extra_arguments) for m in made] for e in expected]
        total = _ordered(credit) if options.ordered else _best_assignment(credit)
        share = total / max(len(expected), len(made))
        return Score(value=share if options.partial else float(share == 1.0), data=data)


def call_credit(expected: ExpectedCall, made: ToolCall, extra_arguments: bool = False) -> float:
    """1 for the right function with the right arguments, 0.5 for the right function alone, else 0."""
    if made.name != expected.name:
        return 0.0
    if expected.arguments is None and expected.arguments_schema is None:
        return 1.0
    arguments, problem = parse_json(made.arguments)
    if problem or not isinstance(arguments, dict):
        return 0.5
    if expected.arguments_schema is not None:
        return 0.5 if schema_error(expected.arguments_schema, arguments) else 1.0
    wanted = expected.arguments or {}
    if extra_arguments:
        arguments = {k: v for k, v in arguments.items() if k in wanted}
    return 1.0 if json_equal(arguments, wanted) else 0.5


def _ordered(credit: list[list[float]]) -> float:
    return sum(row[i] for i, row in enumerate(credit) if i < len(row))


def _best_assignment(credit: list[list[float]]) -> float:
    """The most credit a one-to-one pairing of expected and made calls gets (the Hungarian
    method, scipy's; greedy pairing can miss it when two calls share a name)."""
    np = require("numpy")
    optimize = require("scipy.optimize", "scipy")
    matrix = np.array(credit, dtype=float)
    rows, cols = optimize.linear_sum_assignment(matrix, maximize=True)
    return float(matrix[rows, cols].sum())


class ToolCallRate(Metric):
    name = "tool_call_rate"
    needs_reference = False
    binary = True

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if not item.tools:
            return skipped("the item offers no tools")
        return Score(
            value=float(bool(output.tool_calls)), data={"made": [c.name for c in output.tool_calls or []]}
        )
