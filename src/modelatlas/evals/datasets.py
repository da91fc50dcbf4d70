"""Datasets: JSONL, CSV and Hugging Face ``datasets`` folders, read into Items.

Fields: ``input`` (or chat ``messages``), ``reference`` (a string or a list), optional
``choices`` and ``answer`` (an index, a letter or the choice's text) for multiple choice, ``id``,
and any other field kept as metadata. ``Fields`` maps other names onto these. A dataset is
identified by the hash of its content, whatever the file format.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelatlas.errors import DatasetError
from modelatlas.evals.types import Item
from modelatlas.types import Message


@dataclass(frozen=True)
class Fields:
    input: str = "input"
    reference: str = "reference"
    id: str = "id"
    messages: str = "messages"
    choices: str = "choices"
    answer: str = "answer"


@dataclass
class Dataset:
    path: str
    items: list[Item]
    hash: str

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def has_references(self) -> bool:
        return all(item.reference for item in self.items)

    @property
    def has_choices(self) -> bool:
        return all(item.choices and item.answer is not None for item in self.items)


def load_dataset(path: str | Path, fields: Fields | None = None, limit: int | None = None) -> Dataset:
    """Read a dataset; every bad row is reported with its file and line."""
    fields = fields or Fields()
    source = Path(path)
    if not source.exists():
        raise DatasetError(
            f"No dataset at {source}.", hint="Check the path (JSONL, CSV or a datasets folder)."
        )
    if source.is_dir():
        rows = _hf_rows(source)
    elif source.suffix.lower() == ".csv":
        rows = _csv_rows(source)
    else:
        rows = _jsonl_rows(source)
    items = [_item(row, line, index, fields, source) for index, (line, row) in enumerate(rows)]
    if not items:
        raise DatasetError(f"{source} has no rows.", hint="Add at least one item with an input.")
    _unique_ids(items, source)
    if limit is not None:
        items = items[:limit]
    return Dataset(str(source), items, content_hash(items))


def content_hash(items: list[Item]) -> str:
    """sha256 over the items' content (not their line numbers): the dataset's identity."""
    digest = hashlib.sha256()
    for item in items:
        data = item.model_dump(mode="json", exclude={"line"})
        digest.update(json.dumps(data, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _jsonl_rows(path: Path):
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"Cannot read {path}: {exc.strerror}.") from None
    with handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{path}:{line_no}: not valid JSON ({exc.msg} at column {exc.colno}).",
                    hint="Each line must be one JSON object.",
                ) from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}.")
            yield line_no, row


def _csv_rows(path: Path):
    with path.open(encoding="utf-8", newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            yield line_no, {k: _maybe_json(v) for k, v in row.items() if k is not None}


def _maybe_json(value: str | None) -> Any:
    """CSV cells holding a JSON list (references, choices) become lists."""
    if value and value.strip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _hf_rows(path: Path):
    try:
        import datasets
    except ImportError:
        raise DatasetError(
            f"{path} is a folder; reading Hugging Face datasets needs the 'datasets' package.",
            hint="pip install 'modelatlas[eval]'",
        ) from None
    try:
        data = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise DatasetError(
            f"{path} is not a Hugging Face datasets folder: {exc}.",
            hint="Save it with Dataset.save_to_disk(), or use JSONL/CSV.",
        ) from None
    if isinstance(data, datasets.DatasetDict):
        split = "test" if "test" in data else next(iter(data))
        data = data[split]
    for index, row in enumerate(data):
        yield index + 1, dict(row)


def _item(row: dict, line: int, index: int, f: Fields, path: Path) -> Item:
    where = f"{path}:{line}"
    text, messages = row.get(f.input), row.get(f.messages)
    if (text is None or text == "") and not messages:
        raise DatasetError(
            f"{where}: the row has no {f.input!r} (or {f.messages!r}) field.",
            hint=f"Fields found: {', '.join(row) or 'none'}. Map yours with --input-field.",
        )
    known = {f.input, f.reference, f.id, f.messages, f.choices, f.answer}
    try:
        choices = row.get(f.choices) or None
        return Item(
            id=str(row.get(f.id) if row.get(f.id) not in (None, "") else f"row-{index + 1}"),
            input=None if text is None else str(text),
            messages=[Message.model_validate(m) for m in messages] if messages else None,
            reference=_references(row.get(f.reference)),
            choices=[str(c) for c in choices] if choices else None,
            answer=_answer(row.get(f.answer), choices, where),
            metadata={k: v for k, v in row.items() if k not in known},
            line=line,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DatasetError(f"{where}: field {'.'.join(map(str, err['loc']))}: {err['msg']}.") from None


def _references(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _answer(value: Any, choices: list | None, where: str) -> int | None:
    if value is None or value == "" or not choices:
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        index = int(value)
    elif isinstance(value, str) and len(value.strip()) == 1 and value.strip().isalpha():
        index = ord(value.strip().upper()) - ord("A")
    elif value in choices:
        index = choices.index(value)
    else:
        raise DatasetError(f"{where}: answer {value!r} is not an index, a letter or one of the choices.")
    if not 0 <= index < len(choices):
        raise DatasetError(f"{where}: answer {value!r} is out of range for {len(choices)} choices.")
    return index


def _unique_ids(items: list[Item], path: Path) -> None:
    seen: dict[str, int | None] = {}
    for item in items:
        if item.id in seen:
            raise DatasetError(
                f"{path}:{item.line}: id {item.id!r} repeats line {seen[item.id]}.",
                hint="Give every row its own id, or drop the id field to number rows.",
            )
        seen[item.id] = item.line
