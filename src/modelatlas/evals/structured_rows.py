"""Tool-use and JSON fields in datasets: what an item's call asks, and the call it expects.

A row may carry, in OpenAI's request shapes:

- ``tools``: a list of functions the model may call, each ``{"type": "function", "function":
  {"name", "description", "parameters"}}`` or the flat ``{"name", "description", "parameters"}``;
- ``tool_choice``: ``"auto"``, ``"none"``, ``"required"``, a tool's name, or
  ``{"type": "function", "function": {"name": ...}}``;
- ``response_format``: ``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema":
  {"name", "schema", "strict"}}`` (``{"type": "text"}`` is the same as none);
- ``expected_tool_call`` (what the ``tool_call_match`` metric compares with): one call
  ``{"name", "arguments"}``, a list of them for parallel calls, or ``null`` / ``[]`` when the
  right answer is no call. ``arguments_schema`` instead of ``arguments`` accepts any arguments
  that validate against that JSON schema; with neither, only the name counts.

The first three become the item's fields and go with its call as ``GenerationParams`` (so they
are part of the response cache key); ``expected_tool_call`` stays in the item's metadata,
checked here. In a CSV file these cells hold the JSON text. A bad value is a DatasetError
naming the file, the line and the field.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from modelatlas.errors import DatasetError
from modelatlas.items import Item
from modelatlas.registry import require
from modelatlas.structured import ResponseFormat, Tool

__all__ = ["EXPECTED", "ExpectedCall", "call_fields", "call_settings", "check_schema", "expected_calls"]

TOOLS, TOOL_CHOICE, RESPONSE_FORMAT = "tools", "tool_choice", "response_format"
EXPECTED = "expected_tool_call"
FIELDS = (TOOLS, TOOL_CHOICE, RESPONSE_FORMAT)
CHOICES = ("auto", "none", "required")


class ExpectedCall(BaseModel):
    """A call an item expects: the function's name and its arguments (equal to ``arguments``,
    valid against ``arguments_schema``, or anything when neither is given)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    arguments: dict[str, Any] | None = None
    arguments_schema: dict[str, Any] | None = None


def call_fields(row: dict[str, Any], where: str) -> dict[str, Any]:
    """The Item fields a row's ``tools``, ``tool_choice`` and ``response_format`` make (only
    those it has), its ``expected_tool_call`` checked on the way."""
    tools = _tools(_json_cell(row.get(TOOLS), TOOLS, where), where)
    made: dict[str, Any] = {TOOLS: tools} if tools else {}
    choice = _tool_choice(_json_cell(row.get(TOOL_CHOICE), TOOL_CHOICE, where), tools, where)
    if choice is not None:
        made[TOOL_CHOICE] = choice
    fmt = _response_format(_json_cell(row.get(RESPONSE_FORMAT), RESPONSE_FORMAT, where), where)
    if fmt is not None:
        made[RESPONSE_FORMAT] = fmt
    if EXPECTED in row:
        for call in expected_calls(row[EXPECTED], where):
            if tools and call.name not in {t.name for t in tools}:
                raise DatasetError(
                    f"{where}: field {EXPECTED!r} names {call.name!r}, which is not among the row's tools "
                    f"({', '.join(t.name for t in tools)}).",
                    hint="Name one of the row's tools (a typo here would make every answer wrong).",
                )
    return made


def call_settings(item: Item) -> dict[str, Any]:
    """The GenerationParams fields an item asks for beyond sampling (none for a plain item, so
    its call and cache key are what they were before items had tools)."""
    asked: dict[str, Any] = {}
    if item.tools:
        asked[TOOLS] = tuple(item.tools)
    if item.tool_choice is not None:
        asked[TOOL_CHOICE] = item.tool_choice
    if item.response_format is not None:
        asked[RESPONSE_FORMAT] = item.response_format
    return asked


def expected_calls(value: Any, where: str) -> list[ExpectedCall]:
    """The calls an ``expected_tool_call`` value expects, in order ([] for "no call")."""
    value = _json_cell(value, EXPECTED, where)
    if value is None or value == "":
        return []
    listed = value if isinstance(value, list) else [value]
    calls = []
    for i, call in enumerate(listed):
        at = f"{EXPECTED}[{i}]" if isinstance(value, list) else EXPECTED
        calls.append(_expected(call, at, where))
    return calls


def check_schema(schema: Any, field: str, where: str) -> dict[str, Any]:
    """``schema`` when it is a valid JSON schema (an object), else a DatasetError naming ``field``."""
    if not isinstance(schema, dict):
        raise DatasetError(
            f"{where}: field {field!r} must be a JSON schema (an object), got {_kind(schema)}."
        )
    jsonschema = require("jsonschema", "eval")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "/".join(str(p) for p in exc.path)
        raise DatasetError(
            f"{where}: field {field!r} is not a valid JSON schema: {exc.message}"
            + (f" (at {at})." if at else "."),
            hint='For example: {"type": "object", "properties": {"city": {"type": "string"}}}',
        ) from None
    return schema


def _json_cell(value: Any, field: str, where: str) -> Any:
    """A CSV cell's JSON text as its value (JSONL rows hold the value already)."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{where}: field {field!r} is not valid JSON ({exc.msg} at column {exc.colno})."
            ) from None
    return value


def _tools(value: Any, where: str) -> list[Tool]:
    if value is None or value == "" or value == []:
        return []
    if not isinstance(value, list):
        raise DatasetError(
            f"{where}: field {TOOLS!r} must be a list of tools, got {_kind(value)}.",
            hint='For example: [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]',
        )
    tools: list[Tool] = []
    for i, raw in enumerate(value):
        at = f"{TOOLS}[{i}]"
        flat = _unwrap_function(raw, at, where)
        try:
            tool = Tool.model_validate(flat)
        except ValidationError as exc:
            hint = "A tool has a name (letters, digits, _ and -), a description and parameters."
            raise _invalid(exc, at, where, hint) from None
        check_schema(tool.parameters, f"{at}.parameters", where)
        if tool.name in {t.name for t in tools}:
            raise DatasetError(f"{where}: field {at} repeats the tool name {tool.name!r}.")
        tools.append(tool)
    return tools


def _unwrap_function(raw: Any, at: str, where: str) -> Any:
    """OpenAI's ``{"type": "function", "function": {...}}`` as the flat tool it wraps."""
    if isinstance(raw, dict) and "function" in raw:
        if raw.get("type", "function") != "function" or set(raw) - {"type", "function"}:
            raise DatasetError(
                f"{where}: field {at} must be {{'type': 'function', 'function': {{...}}}} or a flat "
                "{'name', 'description', 'parameters'} tool.",
            )
        return raw["function"]
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: field {at} must be a tool (an object), got {_kind(raw)}.")
    return raw


def _tool_choice(value: Any, tools: list[Tool], where: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        value = value["function"].get("name")
    if not isinstance(value, str):
        raise DatasetError(
            f"{where}: field {TOOL_CHOICE!r} must be 'auto', 'none', 'required' or a tool's name, "
            f"got {_kind(value)}.",
        )
    names = [t.name for t in tools]
    if value == "required" and not tools:
        raise DatasetError(f"{where}: field {TOOL_CHOICE!r} is 'required', but the row has no tools.")
    if value not in CHOICES and value not in names:
        raise DatasetError(
            f"{where}: field {TOOL_CHOICE!r} names {value!r}, which is neither auto, none, required "
            f"nor one of the row's tools ({', '.join(names) or 'none'}).",
        )
    return value


def _response_format(value: Any, where: str) -> ResponseFormat | None:
    if value is None or value == "":
        return None
    field = RESPONSE_FORMAT
    kinds = ("text", "json_object", "json_schema")
    if not isinstance(value, dict) or value.get("type") not in kinds:
        raise DatasetError(
            f"{where}: field {field!r} must be {{'type': 'json_object'}} or {{'type': 'json_schema', "
            f"'json_schema': {{'name', 'schema', 'strict'}}}}, got {_short(value)}.",
        )
    if value["type"] == "text":
        return None
    if value["type"] == "json_object":
        return ResponseFormat(type="json_object")
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or "schema" not in spec:
        raise DatasetError(
            f"{where}: field {field}.json_schema must be an object with a 'schema', got {_short(spec)}.",
            hint='For example: {"type": "json_schema", "json_schema": {"name": "city", "schema": {...}}}',
        )
    schema = check_schema(spec["schema"], f"{field}.json_schema.schema", where)
    try:
        return ResponseFormat(
            type="json_schema",
            json_schema=schema,
            name=spec.get("name", "response"),
            strict=spec.get("strict", False),
        )
    except ValidationError as exc:
        raise _invalid(exc, f"{field}.json_schema", where, "name is text, strict is true or false.") from None


def _expected(call: Any, at: str, where: str) -> ExpectedCall:
    if isinstance(call, dict) and isinstance(call.get("function"), dict):  # OpenAI's tool_calls entry
        call = call["function"]
    if isinstance(call, dict) and isinstance(call.get("arguments"), str):  # arguments as JSON text
        call = {**call, "arguments": _json_cell(call["arguments"] or "{}", f"{at}.arguments", where)}
    try:
        expected = ExpectedCall.model_validate(call)
    except ValidationError as exc:
        hint = 'For example: {"name": "get_weather", "arguments": {"city": "Paris"}}.'
        raise _invalid(exc, at, where, hint) from None
    if expected.arguments is not None and expected.arguments_schema is not None:
        raise DatasetError(f"{where}: field {at} has both 'arguments' and 'arguments_schema'; give one.")
    if expected.arguments_schema is not None:
        check_schema(expected.arguments_schema, f"{at}.arguments_schema", where)
    return expected


def _invalid(exc: ValidationError, at: str, where: str, hint: str) -> DatasetError:
    err = exc.errors()[0]
    loc = "".join(f".{p}" for p in err["loc"])
    return DatasetError(f"{where}: field {at}{loc}: {err['msg']}.", hint=hint)


def _kind(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        bool: "a boolean",
        type(None): "null",
        int: "a number",
        float: "a number",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def _short(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}..." if len(text) > 60 else text
