"""Datasets: JSONL, CSV and Hugging Face ``datasets`` folders, read into Items.

Fields: ``input`` (or chat ``messages``), ``reference`` (a string or a list), optional
``choices`` and ``answer`` (an index, a letter or the choice's text) for multiple choice, ``id``,
and any other field kept as metadata. ``Fields`` maps other names onto these. Rows in the
fine-tuning formats are read too: a chat whose last turn is the assistant's has that turn as its
reference (the turns before it are the input), and ``prompt``/``completion`` are input and
reference. A dataset is identified by the hash of its content, whatever the file format.

Files are UTF-8 (a byte-order mark is accepted). Every problem, from undecodable bytes to a
value of the wrong type, is a DatasetError naming the file and line, never a traceback.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelatlas.errors import DatasetError
from modelatlas.evals.audio_rows import audio_part, audiofolder_metadata, audiofolder_rows, speech_reference
from modelatlas.evals.image_rows import (
    image_parts,
    imagefolder_rows,
    label_folders,
    labelled_rows,
    undecoded_images,
)
from modelatlas.evals.structured_rows import FIELDS as CALL_FIELDS
from modelatlas.evals.structured_rows import call_fields
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
    audio: str = "audio"
    image: str = "image"


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
    if not source.exists():  # a path that exists is always a file; else it may name a built-in
        return _builtin(str(source), limit)
    where = source  # the file that error messages name (an audiofolder's metadata file)
    if source.is_dir() and (metadata := audiofolder_metadata(source)) is not None:
        read = _csv_rows if metadata.suffix == ".csv" else _jsonl_rows
        rows, where = audiofolder_rows(metadata, read, fields.audio), metadata
        rows = imagefolder_rows(rows, fields.image, fields.audio)  # the same layout, of pictures
    elif source.is_dir() and (labelled := label_folders(source)) is not None:
        rows, where = labelled_rows(labelled, fields.image, fields.reference), labelled
    elif source.is_dir():
        rows = _hf_rows(source)
    elif source.suffix.lower() == ".csv":
        rows = _csv_rows(source)
    else:
        rows = _jsonl_rows(source)
    items = [_item(row, line, index, fields, where) for index, (line, row) in enumerate(rows)]
    if not items:
        raise DatasetError(f"{source} has no rows.", hint="Add at least one item with an input.")
    _unique_ids(items, where)
    if limit is not None:
        items = items[:limit]
    return Dataset(str(source), items, content_hash(items))


def _builtin(name: str, limit: int | None) -> Dataset:
    """A built-in dataset by name (evals.builtin: ``humaneval``), or the missing file's error."""
    from modelatlas.evals.builtin import BUILTINS, read_builtin

    items = read_builtin(name)
    if items is None:
        raise DatasetError(
            f"No dataset at {name}.",
            hint="Check the path (JSONL, CSV or a datasets folder), or name a built-in dataset: "
            + ", ".join(BUILTINS)
            + ".",
        )
    items = items[:limit] if limit is not None else items
    return Dataset(name.strip().lower(), items, content_hash(items))


def content_hash(items: list[Item]) -> str:
    """sha256 over the items' content (not their line numbers): the dataset's identity."""
    digest = hashlib.sha256()
    for item in items:
        # an item without audio hashes as it did before items had audio; a sound counts by its bytes
        data = item.model_dump(mode="json", exclude={"line", "audio", "images"})
        if item.audio is not None:
            data["audio"] = item.audio.fingerprint()
        if item.images:  # likewise: an item without pictures hashes as before; a picture by its bytes
            data["images"] = [image.fingerprint() for image in item.images]
        if item.messages:  # an image or audio part counts by its bytes (a path's file is read)
            data["messages"] = [message.fingerprint() for message in item.messages]
        digest.update(json.dumps(data, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


BOM = "\ufeff"
# Deeper JSON is no dataset row: 100,000 levels overflow json's parser (RecursionError) and 500
# levels pydantic's serialiser (which stops at "Maximum serialization depth exceeded").
MAX_DEPTH = 64
TOO_DEEP = object()


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The file's lines (endings kept), decoded as UTF-8 one by one, so a bad byte has a line."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DatasetError(f"Cannot read {path}: {exc.strerror}.") from None
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            if b"\0" in raw:
                raise DatasetError(
                    f"{path}:{line_no}: a NUL byte: this looks like a binary file, not text.",
                    hint="Give a UTF-8 JSONL or CSV file.",
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte, column = raw[exc.start], exc.start + 1
                raise DatasetError(
                    f"{path}:{line_no}: not UTF-8 text (byte 0x{byte:02x} at column {column}).",
                    hint="Save the file as UTF-8 (for example: iconv -f latin1 -t utf-8).",
                ) from None
            yield line_no, text.removeprefix(BOM) if line_no == 1 else text


def _jsonl_rows(path: Path):
    for line_no, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line, parse_constant=_no_constant(where))
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).",
                hint="Each line must be one JSON object.",
            ) from None
        except RecursionError:
            row = TOO_DEEP  # reported just below, as for any row nested too deeply
        if row is TOO_DEEP or _too_deep(row):
            raise DatasetError(f"{where}: the JSON is nested more than {MAX_DEPTH} levels deep.")
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(row).__name__}.")
        yield line_no, row


def _no_constant(where: str):
    def refuse(name: str):
        raise DatasetError(
            f"{where}: {name} is not a JSON value.", hint="Write null, a number or a string instead."
        )

    return refuse


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests more than MAX_DEPTH lists or objects (checked without recursion)."""
    todo = [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = node.values() if isinstance(node, dict) else node
            todo.extend((child, depth + 1) for child in children)
    return False


def _csv_rows(path: Path):
    lines = _lines(path)
    reader = csv.DictReader(text for _, text in lines)
    try:
        for row in reader:
            line_no = reader.line_num  # the row's last line (a quoted cell may span lines)
            if any(cell.strip() for cell in row.pop(None, [])):
                raise DatasetError(f"{path}:{line_no}: more cells than the header has columns.")
            yield line_no, {k: _maybe_json(v, f"{path}:{line_no}") for k, v in row.items()}
    except csv.Error as exc:
        raise DatasetError(f"{path}:{reader.line_num}: not valid CSV ({exc}).") from None


def _maybe_json(value: str | None, where: str) -> Any:
    """CSV cells holding a JSON list (references, choices) become lists."""
    if value and value.strip().startswith("["):
        try:
            parsed = json.loads(value, parse_constant=_no_constant(where))
        except json.JSONDecodeError:
            return value
        except RecursionError:
            parsed = TOO_DEEP
        if parsed is TOO_DEEP or _too_deep(parsed):
            raise DatasetError(f"{where}: the JSON is nested more than {MAX_DEPTH} levels deep.")
        return parsed
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
    for name, feature in list(data.features.items()):  # sounds stay undecoded: no audio decoder needed
        if isinstance(feature, datasets.Audio):
            data = data.cast_column(name, datasets.Audio(decode=False))
        if (kept := undecoded_images(feature)) is not None:  # pictures too: bytes, not PIL images
            data = data.cast_column(name, kept)
    for index, row in enumerate(data):
        yield index + 1, dict(row)


def _item(row: dict, line: int, index: int, f: Fields, path: Path) -> Item:
    where = f"{path}:{line}"
    row = _fine_tuning_row(row, f, where)
    text, messages = row.get(f.input), row.get(f.messages)
    has_audio = row.get(f.audio) not in (None, "")
    has_images = row.get(f.image) not in (None, "")
    if (text is None or text == "") and not messages and not has_audio and not has_images:
        raise DatasetError(
            f"{where}: the row has no {f.input!r} (or {f.messages!r}, {f.audio!r} or {f.image!r}) field.",
            hint=f"Fields found: {', '.join(row) or 'none'}. Map yours with --input-field.",
        )
    reference = speech_reference(row, f.reference) if has_audio else f.reference
    known = {f.input, reference, f.id, f.messages, f.choices, f.answer, f.audio, f.image, *CALL_FIELDS}
    choices = _choices(row.get(f.choices), f.choices, where)
    item_id = row.get(f.id)
    return Item(
        id=_text(item_id, f.id, where) if item_id not in (None, "") else f"row-{index + 1}",
        input=None if text is None else _text(text, f.input, where),
        messages=_messages(messages, f.messages, where, path.parent) if messages else None,
        audio=audio_part(row[f.audio], f.audio, where, path.parent) if has_audio else None,
        images=image_parts(row[f.image], f.image, where, path.parent) if has_images else [],
        reference=_texts(row.get(reference), reference, where),
        choices=choices,
        answer=_answer(row.get(f.answer), choices, where),
        metadata={k: v for k, v in row.items() if k not in known},
        line=line,
        **call_fields(row, where),  # tools, tool_choice, response_format (evals.structured_rows)
    )


def _fine_tuning_row(row: dict, f: Fields, where: str) -> dict:
    """A row in a fine-tuning format, as an item: a chat ending with the assistant's turn has
    that turn as its reference; ``prompt``/``completion`` are input and reference."""
    if row.get(f.reference) not in (None, "", []):
        return row
    messages = row.get(f.messages)
    if isinstance(messages, list) and len(messages) > 1 and isinstance(messages[-1], dict):
        last = messages[-1]
        if last.get("role") == "assistant" and isinstance(last.get("content"), str) and not row.get(f.input):
            return {**row, f.messages: messages[:-1], f.reference: last["content"]}
    if row.get(f.input) is None and not messages and "prompt" in row and "completion" in row:
        rest = {k: v for k, v in row.items() if k not in ("prompt", "completion")}
        return {**rest, f.input: row["prompt"], f.reference: row["completion"]}
    return row


def _text(value: Any, field: str, where: str) -> str:
    """A text field: a string, or a number written as one. Anything else is a mistake that
    ``str()`` would hide (``{'a': 1}`` or ``nan`` as the reference)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DatasetError(
            f"{where}: field {field!r} must be text, got {_kind(value)} {_short(value)}.",
            hint="Write it as a string (or a list of strings, for references and choices).",
        )
    return str(value)


def _texts(value: Any, field: str, where: str) -> list[str]:
    """A field holding one text or a list of texts (references, choices)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [_text(v, f"{field}[{i}]", where) for i, v in enumerate(value)]
    return [_text(value, field, where)]


def _choices(value: Any, field: str, where: str) -> list[str] | None:
    if value is None or value == "" or value == []:
        return None
    if not isinstance(value, list):
        raise DatasetError(
            f"{where}: field {field!r} must be a list of texts, got {_kind(value)} {_short(value)}.",
            hint='For example: ["Paris", "Lyon"] (in a CSV cell too).',
        )
    return _texts(value, field, where)


def _messages(value: Any, field: str, where: str, folder: Path) -> list[Message]:
    if not isinstance(value, list):
        raise DatasetError(
            f"{where}: field {field!r} must be a list of {{role, content}} objects, got {_kind(value)}.",
            hint='For example: [{"role": "user", "content": "Hi"}]',
        )
    messages = []
    for i, message in enumerate(value):
        try:
            messages.append(Message.model_validate(message).under(folder))
        except ValidationError as exc:
            err = exc.errors()[0]
            at = "".join(f".{p}" for p in err["loc"])
            raise DatasetError(
                f"{where}: field {field}[{i}]{at}: {err['msg']}.",
                hint="Each message is an object with a role (system, user, assistant) and a text content.",
            ) from None
        _files_exist(messages[-1], f"{field}[{i}]", where, folder)
    return messages


def _files_exist(message: Message, at: str, where: str, folder: Path) -> None:
    """A missing file fails here, with its line, rather than at the first call (the dataset's
    hash reads the file's bytes)."""
    for path in message.files():
        if not path.is_file():
            raise DatasetError(
                f"{where}: field {at} names the file {path}, which does not exist.",
                hint="A relative path is read from the dataset's folder.",
            )


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")


def _short(value: Any) -> str:
    text = repr(value)
    return f"({text[:40]}...)" if len(text) > 40 else f"({text})"


def _answer(value: Any, choices: list | None, where: str) -> int | None:
    if value is None or value == "" or not choices:
        return None
    if isinstance(value, bool):
        raise DatasetError(f"{where}: answer {value!r} is not an index, a letter or one of the choices.")
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
