"""Structured outputs: how often the bundled chat models write valid, schema-keeping JSON, with
and without ``response_format``, and what the grammar costs in decode speed.

Each of 50 prompts (made here from varied small schemas: flat objects of strings, integers,
numbers and booleans, enums, bounded lists, nested objects, patterns) asks for one JSON value
and shows its schema in the prompt. Every prompt is answered twice by the same model in the
same run, interleaved: unconstrained (the schema in words only), and with
``response_format={"type": "json_schema", ...}`` (grammar-constrained decoding). Validity is
what the ``json_valid`` and ``json_schema`` metrics measure (strict ``json.loads``, then
``jsonschema``). Decode speed is output tokens over decode seconds (wall time after the first
token), summed over the prompts of a side; the baseline is the unconstrained side.

An answer cut at ``--max-tokens`` (the "cut" column) cannot be whole JSON whatever the grammar;
the report says how many were cut and the schema-valid rate of the rest.

Targets: 100% valid and schema-valid when constrained; constrained / unconstrained decode
tokens/s >= 0.8.

    python bench/structured.py [--quick] [--prompts 50] [--max-tokens 256] [--model ID ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

MODELS = ["local/smollm2-135m-instruct", "local/qwen2.5-coder-0.5b-instruct"]
SUBJECTS = [
    ("a person", {"name": "string", "age": "integer", "city": "string", "employed": "boolean"}),
    ("a book", {"title": "string", "author": "string", "year": "integer", "pages": "integer"}),
    ("a city", {"name": "string", "country": "string", "population": "integer", "coastal": "boolean"}),
    ("a product", {"name": "string", "price": "number", "in_stock": "boolean", "sku": "string"}),
    ("a movie", {"title": "string", "director": "string", "year": "integer", "rating": "number"}),
    ("a recipe", {"dish": "string", "minutes": "integer", "vegetarian": "boolean", "servings": "integer"}),
    ("an animal", {"species": "string", "legs": "integer", "can_fly": "boolean", "habitat": "string"}),
    ("a car", {"make": "string", "model": "string", "year": "integer", "electric": "boolean"}),
    ("a song", {"title": "string", "artist": "string", "seconds": "integer", "explicit": "boolean"}),
    ("a planet", {"name": "string", "moons": "integer", "gas_giant": "boolean", "order": "integer"}),
]
ENUMS = {
    "sentiment": ["positive", "negative", "neutral"],
    "size": ["small", "medium", "large"],
    "priority": ["low", "high"],
}


def make_prompts(n: int, seed: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """``n`` (prompt, schema) pairs: each a subject with some of its fields and one extra shape
    (an enum, a bounded list, a nested object or a pattern), drawn with a fixed seed."""
    rng = random.Random(seed)
    made = []
    for i in range(n):
        subject, fields = SUBJECTS[i % len(SUBJECTS)]
        names = rng.sample(sorted(fields), rng.randint(2, len(fields)))
        properties: dict[str, Any] = {name: {"type": fields[name]} for name in names}
        name, extra = _extra(i, rng)
        properties[name] = extra
        schema = {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
        prompt = (
            f"Describe {subject} as a JSON object that follows this JSON schema:\n"
            f"{json.dumps(schema)}\nReply with the JSON only."
        )
        made.append((prompt, schema))
    return made


def _extra(i: int, rng: random.Random) -> tuple[str, dict[str, Any]]:
    kind = i % 4
    if kind == 0:
        key = rng.choice(sorted(ENUMS))
        return key, {"type": "string", "enum": ENUMS[key]}
    if kind == 1:
        low = rng.randint(1, 3)
        return "tags", {"type": "array", "items": {"type": "string"}, "minItems": low, "maxItems": low + 1}
    if kind == 2:
        inner = {"street": {"type": "string"}, "zip": {"type": "string"}}
        return "address", {"type": "object", "properties": inner, "required": ["street", "zip"]}
    return "code", {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3}$"}


@dataclass
class Side:
    """One side's tallies over the prompts: answers, validity, tokens and decode seconds."""

    answered: int = 0
    errors: list[str] = field(default_factory=list)
    valid: int = 0
    schema_valid: int = 0
    truncated: int = 0  # answers cut at max_tokens (finish_reason "length")
    tokens: int = 0
    decode_s: float = 0.0

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.decode_s if self.decode_s > 0 else None


async def bench_model(model_id: str, prompts: list, max_tokens: int) -> dict[str, Side]:
    from modelatlas.errors import ModelAtlasError
    from modelatlas.evals.metrics.structured import parse_json, schema_error
    from modelatlas.loading import load_model
    from modelatlas.structured import ResponseFormat
    from modelatlas.types import Message

    sides = {"unconstrained": Side(), "constrained": Side()}
    async with load_model(model_id) as model:
        await model.generate([Message.user("Hi")], max_tokens=4)  # warm up: load, first graph
        for i, (prompt, schema) in enumerate(prompts):
            order = (
                list(sides.items()) if i % 2 == 0 else list(sides.items())[::-1]
            )  # neither side always first
            for name, side in order:
                fmt = ResponseFormat(type="json_schema", json_schema=schema, strict=True)
                extra = {"response_format": fmt} if name == "constrained" else {}
                try:
                    done = await model.generate([Message.user(prompt)], max_tokens=max_tokens, **extra)
                except ModelAtlasError as exc:
                    side.errors.append(exc.message)
                    continue
                side.answered += 1
                side.truncated += done.finish_reason == "length"
                tokens = done.usage.output_tokens
                print(f"  prompt {i + 1} {name}: {tokens} tokens", file=sys.stderr, flush=True)
                value, problem = parse_json(done.text)
                side.valid += problem is None
                side.schema_valid += problem is None and schema_error(schema, value) is None
                decode = done.timing.latency_s - (done.timing.ttft_s or 0.0)
                if done.usage.output_tokens > 1 and decode > 0:
                    side.tokens += done.usage.output_tokens - 1  # the first token is not decode time
                    side.decode_s += decode
    return sides


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def report(results: dict[str, dict[str, Side]], n: int) -> None:
    print(f"\n{n} JSON-schema prompts per side\n")
    header = (
        f"{'model':38} {'side':14} {'answered':>8} {'cut':>4} {'valid JSON':>10} {'schema ok':>10} "
        f"{'decode tok/s':>12}"
    )
    print(header)
    print("-" * len(header))
    for model, sides in results.items():
        for name, s in sides.items():
            speed = f"{s.tokens_per_s:.1f}" if s.tokens_per_s else "-"
            row = f"{model:38} {name:14} {s.answered:>8} {s.truncated:>4} {pct(s.valid, n):>10}"
            row += f" {pct(s.schema_valid, n):>10}"
            print(f"{row} {speed:>12}")
    print()
    for model, sides in results.items():
        free, held = sides["unconstrained"], sides["constrained"]
        ratio = (held.tokens_per_s / free.tokens_per_s) if held.tokens_per_s and free.tokens_per_s else None
        shown = f"{ratio:.2f}" if ratio is not None else "-"
        full = held.schema_valid == n
        finished = n - held.truncated
        print(
            f"{model}: constrained schema-valid {pct(held.schema_valid, n)} (target 100%: "
            f"{'met' if full else 'missed'}); decode tok/s constrained/unconstrained {shown} "
            f"(target >= 0.8: {'met' if ratio is not None and ratio >= 0.8 else 'missed'}); "
            f"{held.truncated} constrained answers cut at max_tokens, schema-valid of the "
            f"finished: {pct(held.schema_valid, finished)}"
        )
        for name, side in sides.items():
            for error in sorted(set(side.errors))[:3]:
                print(f"  {name} error ({side.errors.count(error)}x): {error[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10 prompts instead of 50")
    parser.add_argument("--prompts", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--model", action="append", help="a model id (default: the bundled chat models)")
    args = parser.parse_args()
    n = args.prompts or (10 if args.quick else 50)
    prompts = make_prompts(n)
    os.environ.setdefault("MODELATLAS_HOME", tempfile.mkdtemp(prefix="bench-structured-"))
    results = {}
    for model_id in args.model or MODELS:
        print(f"{model_id}: {n} prompts x 2 sides ...", file=sys.stderr, flush=True)
        results[model_id] = asyncio.run(bench_model(model_id, prompts, args.max_tokens))
        report({model_id: results[model_id]}, n)  # each model's figures as soon as it is done
    if len(results) > 1:
        report(results, n)


if __name__ == "__main__":
    main()
