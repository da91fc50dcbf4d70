"""Result files: per-item JSONL and CSV, and the summary as JSON. Every write is atomic."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelatlas.evals.types import ItemResult

CSV_FIELDS = [
    "run_id",
    "model",
    "strategy",
    "item_id",
    "index",
    "output",
    "error",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_s",
    "ttft_s",
    "cached",
]


def atomic_write(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file next to ``path``, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _number(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def result_record(result: ItemResult) -> dict[str, Any]:
    """One item result as a flat, JSON-ready record."""
    out = result.output
    return {
        "run_id": result.run_id,
        "model": result.model,
        "strategy": result.strategy,
        "item_id": result.item_id,
        "index": result.index,
        "output": out.text,
        "error": out.error,
        "scores": {name: _number(s.value) for name, s in result.scores.items()},
        "score_errors": {name: s.error for name, s in result.scores.items() if s.error is not None},
        "usage": {
            "input_tokens": out.usage.input_tokens,
            "output_tokens": out.usage.output_tokens,
            "cost_usd": _number(out.usage.cost_usd),
        },
        "latency_s": _number(out.latency_s),
        "ttft_s": _number(out.ttft_s),
        "cost_usd": _number(out.usage.cost_usd),
        "cached": out.cached,
    }


def write_jsonl(results: Iterable[ItemResult], path: str | Path) -> Path:
    """One JSON line per item result (see :func:`result_record`)."""
    lines = [json.dumps(result_record(r), ensure_ascii=False, allow_nan=False) for r in results]
    return atomic_write(path, "".join(line + "\n" for line in lines))


def write_csv(results: Iterable[ItemResult], path: str | Path) -> Path:
    """The same records, flattened: one column per metric, and ``score_errors`` as JSON."""
    records = [result_record(r) for r in results]
    metrics = list(dict.fromkeys(name for rec in records for name in rec["scores"]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*CSV_FIELDS, *metrics, "score_errors"])
    writer.writeheader()
    for rec in records:
        row = {key: rec[key] for key in CSV_FIELDS if key in rec}
        row |= {"input_tokens": rec["usage"]["input_tokens"], "output_tokens": rec["usage"]["output_tokens"]}
        row |= {name: rec["scores"].get(name) for name in metrics}
        row["score_errors"] = (
            json.dumps(rec["score_errors"], ensure_ascii=False) if rec["score_errors"] else ""
        )
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return atomic_write(path, buffer.getvalue())


def write_json(summary: dict[str, Any], path: str | Path) -> Path:
    """The summary (from :func:`modelatlas.evals.summary.summarize`) as indented JSON."""
    return atomic_write(path, json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
