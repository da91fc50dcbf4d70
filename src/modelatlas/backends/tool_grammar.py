"""The grammar that makes a local model call a tool when it must (``tool_choice`` "required" or
a function's name): the answer is then one call block (or, with parallel calls, one or more)
in the template's own format, naming one of the allowed functions, its arguments keeping that
function's ``parameters`` schema.

The call object's grammar comes from llama.cpp's JSON-schema-to-grammar converter, given one
schema per allowed function (``name`` its constant, ``arguments`` its parameters, written in
that order, as the template shows the model); the markers around it are added here. A
``strict`` tool's schema is first checked as ``response_format``'s is: a keyword the grammar
cannot enforce is a 400. A tool that is not strict gets what the grammar can enforce, as
OpenAI gives what it can for a non-strict function.
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelatlas.backends import grammars
from modelatlas.backends.tool_calls import HERMES, ToolFormat
from modelatlas.errors import InvalidRequestError
from modelatlas.structured import choice_names
from modelatlas.types import GenerationParams

__all__ = ["call_schema", "grammar_for"]

MAX_PARALLEL = 8  # calls a forced answer may hold: a small model could repeat one for ever


def grammar_for(params: GenerationParams, fmt: ToolFormat = HERMES) -> str | None:
    """GBNF text forcing a well-formed call when ``tool_choice`` demands one; None when the
    model may answer freely ("auto", "none", or no tools)."""
    if not params.tools or params.tool_choice in ("auto", "none"):
        return None
    names = choice_names(params.tool_choice, params.tools)
    schemas = {tool.name: tool.parameters for tool in params.tools if tool.name in names}
    for tool in params.tools:
        if tool.name in schemas and tool.strict:
            grammars.check_schema(tool.parameters, "tools")
    parallel = params.parallel_tool_calls and fmt.parallel
    rules = grammars.schema_grammar(call_schema(schemas, fmt), "tools", prop_order=_CALL_ORDER)
    return _wrapped(rules, fmt.open, fmt.close, parallel)


def call_schema(schemas: dict[str, dict[str, Any]], fmt: ToolFormat) -> dict[str, Any]:
    """The JSON schema of one call of any function in ``schemas`` (name -> parameters)."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": name}, fmt.arguments_key: parameters},
            "required": ["name", fmt.arguments_key],
            "additionalProperties": False,
        }
        for name, parameters in schemas.items()
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


_CALL_ORDER = ("name", "arguments", "parameters")  # as templates show a call to the model


def _wrapped(rules: str, open_marker: str, close_marker: str, parallel: bool) -> str:
    """The call object's ``rules`` inside the template's markers, as the root of the grammar."""
    if _refers_to_root(rules):
        raise InvalidRequestError(
            "'tools' holds a parameters schema that refers to its own root ('$ref': '#'), "
            "which a forced tool call cannot be built from.",
            param="tools",
        )
    rules = re.sub(r"^root ::=", "tool-call ::=", rules, count=1, flags=re.M)
    if not open_marker:
        return f"root ::= tool-call\n{rules}"
    block = f"{_literal(open_marker + chr(10))} tool-call {_literal(chr(10) + close_marker)}"
    more = f' ("\\n" tool-block){{0,{MAX_PARALLEL - 1}}}' if parallel else ""
    return f"root ::= tool-block{more}\ntool-block ::= {block}\n{rules}"


_QUOTED = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]')


def _refers_to_root(rules: str) -> bool:
    """Whether a rule's body names ``root`` (outside literals): the schema recurses on itself."""
    bodies = (line.partition(" ::= ")[2] for line in rules.splitlines())
    return any(re.search(r"(?<![\w-])root(?![\w-])", _QUOTED.sub("", body)) for body in bodies)


def _literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    return json.dumps(text)
