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

from modelatlas.errors import ConfigError
from modelatlas.evals.results import RunSummary
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
    """Write ``text`` to a temporary file next to ``path``, then move it into place.

    The folder must exist already: a typo in a path should not silently grow a new tree of
    folders. The file gets the mode any other program would give it (0644 under umask 022), or
    keeps the mode of the file it replaces, rather than mkstemp's private 0600."""
    path = Path(path)
    check_writable(path)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _unwritable(path, exc) from None
        raise
    return path


def check_writable(path: str | Path) -> Path:
    """Refuse, before any work is done, a path whose folder is missing or which is a folder."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(
            f"Cannot write {path}: the folder {folder} does not exist.",
            hint=f"Create it first (mkdir -p {folder}) or pick another path.",
        )
    if path.is_dir():
        raise ConfigError(f"Cannot write {path}: it is a folder.", hint="Give a file name.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"Cannot write {path}: the folder {folder} is not writable.", hint="Pick another path."
        )
    return path


def _unwritable(path: Path, exc: OSError) -> ConfigError:
    return ConfigError(f"Cannot write {path}: {exc.strerror or exc}.", hint="Pick another path.")


def _umask() -> int:
    # The only portable way to read the umask is to set it and put it back; both are one
    # system call, so the window in which another thread could create a file is tiny.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _number(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def result_record(result: ItemResult) -> dict[str, Any]:
    """One item result as a flat, JSON-ready record."""
    out = result.output
    record: dict[str, Any] = {
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
        # What was sent, exactly, so a reader can see a few-shot prompt really holds its examples.
        "prompt": _prompt(out.prompt),
        "examples": out.examples,
        "examples_short": out.examples_short,
    }
    if out.samples is not None:  # --samples-per-item: every answer, in order (the first is "output")
        record["samples"] = out.samples
    if out.images is not None:  # an image model's pictures: files in the home (evals.image_plan)
        record["images"] = [image.model_dump(mode="json") for image in out.images]
    if out.tool_calls is not None:  # the calls the model made (an item with tools), arguments as written
        record["tool_calls"] = [call.model_dump(mode="json") for call in out.tool_calls]
    return record


def _prompt(prompt) -> str | list[dict] | None:
    if prompt is None or isinstance(prompt, str):
        return prompt
    return [m.model_dump(mode="json") for m in prompt]


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


def write_json(summary: RunSummary, path: str | Path) -> Path:
    """The summary (from :func:`modelatlas.evals.summary.summarize`) as indented JSON."""
    data = summary.model_dump(mode="json")  # the shape `eval --json` prints
    return atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
