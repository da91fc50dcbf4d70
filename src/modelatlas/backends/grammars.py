"""Grammars that hold a llama.cpp model's answer to a JSON shape (OpenAI's ``response_format``).

The grammar comes from llama.cpp's own JSON-schema-to-grammar converter (the Python port that
llama-cpp-python ships), so the answer always parses, and for the keywords it enforces always
validates. The converter skips what it cannot enforce (``minimum``, ``oneOf`` read as
``anyOf``, most ``format`` values) without a word; :func:`check_schema` refuses those keywords
first, with a 400 naming the keyword and where it stands, rather than promise an answer the
grammar cannot guarantee.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from modelatlas.backends import llama_adapter
from modelatlas.errors import InvalidRequestError
from modelatlas.structured import ResponseFormat

__all__ = ["ANNOTATIONS", "ENFORCED", "check_schema", "response_grammar", "schema_grammar"]

# Keywords the converter turns into grammar rules (every answer it lets through keeps them).
ENFORCED = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "enum",
        "const",
        "anyOf",
        "allOf",
        "$ref",
        "$defs",
        "definitions",
        "pattern",
        "format",
        "minLength",
        "maxLength",
    }
)
# Keywords that say what a value means, not what it may be: nothing to enforce.
ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated"}
    | {"readOnly", "writeOnly", "strict", "discriminator"}
)
FORMATS = frozenset({"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"})
_MAPS = ("properties", "$defs", "definitions")  # keyword -> {name: schema}
_LISTS = ("anyOf", "allOf", "prefixItems")  # keyword -> [schema, ...]


def check_schema(schema: Any, param: str) -> None:
    """Refuse a JSON schema the grammar cannot enforce in full, naming the first keyword that
    is not enforced and its place (``param`` is the request field the schema came in)."""
    _check(schema, param, "#")


def _check(schema: Any, param: str, where: str) -> None:
    if isinstance(schema, bool):
        return  # true: anything; false: nothing (as a property, it is simply never written)
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            f"'{param}' is not a valid JSON schema: at {where} a schema must be an object, "
            f"not {type(schema).__name__}.",
            param=param,
        )
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if keyword not in ENFORCED:
            raise InvalidRequestError(
                f"'{param}' uses the JSON schema keyword '{keyword}' (at {where}), which "
                "constrained decoding cannot enforce, so the answer could break it.",
                hint="Enforced keywords: " + ", ".join(sorted(ENFORCED)) + f". Leave '{keyword}' out "
                "and check it yourself after the answer.",
                param=param,
            )
        if keyword == "format" and value not in FORMATS:
            raise InvalidRequestError(
                f"'{param}' asks for the string format {value!r} (at {where}), which constrained "
                "decoding cannot enforce.",
                hint="Enforced formats: " + ", ".join(sorted(FORMATS)) + "; or use a 'pattern'.",
                param=param,
            )
        _check_inside(keyword, value, param, f"{where}/{keyword}")


def _check_inside(keyword: str, value: Any, param: str, where: str) -> None:
    if keyword in _MAPS and isinstance(value, dict):
        for name, sub in value.items():
            _check(sub, param, f"{where}/{name}")
    elif keyword in _LISTS and isinstance(value, list):
        for i, sub in enumerate(value):
            _check(sub, param, f"{where}/{i}")
    elif keyword == "items":
        for i, sub in enumerate(value if isinstance(value, list) else [value]):
            _check(sub, param, f"{where}/{i}" if isinstance(value, list) else where)
    elif keyword == "additionalProperties" and not isinstance(value, bool):
        _check(value, param, where)


def response_grammar(fmt: ResponseFormat | None, param: str = "response_format") -> str | None:
    """The GBNF grammar for ``fmt`` (None for free text): any JSON object for ``json_object``,
    the schema's shape for ``json_schema`` (refused first if it cannot be enforced)."""
    if fmt is None or not fmt.constrains:
        return None
    if fmt.type == "json_object" or fmt.json_schema is None:
        return schema_grammar({"type": "object"}, param)
    check_schema(fmt.json_schema, param)
    return schema_grammar(fmt.json_schema, param)


def schema_grammar(schema: dict[str, Any], param: str, prop_order: tuple[str, ...] = ()) -> str:
    """llama.cpp's grammar for ``schema`` (properties written in ``prop_order`` first, where
    given); a schema it cannot read is a 400 naming ``param``."""
    try:
        return _converted(json.dumps(schema, sort_keys=True), prop_order)
    except InvalidRequestError:
        raise
    except Exception as exc:  # the converter asserts and raises ValueError, KeyError, ...
        raise InvalidRequestError(
            f"'{param}' holds a JSON schema llama.cpp's grammar converter cannot read: "
            f"{exc or type(exc).__name__}.",
            hint="Check $ref targets (local '#/$defs/...' only) and patterns (anchored with ^ and $).",
            param=param,
        ) from None


@functools.lru_cache(maxsize=256)
def _converted(schema_json: str, prop_order: tuple[str, ...]) -> str:
    return llama_adapter.json_schema_to_gbnf(schema_json, prop_order=list(prop_order) or None)
