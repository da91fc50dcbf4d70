"""Check a model file or folder when it is added, so a broken one is refused there, not at the first run.

A GGUF file must parse to the end of its header (``modelatlas.gguf_reader``: magic, key/value
pairs, tensor table), and be as long as the tensor data that header promises: a cut-off
download parses fine but is too short.
A Hugging Face folder needs a config.json that names the model (model_type or architectures)
and weight files whose safetensors headers parse and fit in their files. Nothing is loaded: a
135M GGUF checks in about 11 ms (its vocabulary is stepped over string by string).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from modelatlas.errors import ModelFileError
from modelatlas.gguf_reader import MAGIC, GGUFFormatError, read_header


def check_gguf(path: str | Path) -> None:
    """Raise ModelFileError unless ``path`` is a whole GGUF file."""
    file = Path(path)
    size = file.stat().st_size
    if size == 0:
        raise _bad(file, "is empty (0 bytes)")
    try:
        with file.open("rb") as f:
            magic = f.read(4)
        needed = read_header(file).data_end() if magic == MAGIC else None
    except OSError as exc:
        raise _bad(file, f"cannot be read ({exc.strerror})", hint="Check its permissions.") from None
    except GGUFFormatError as exc:
        raise _bad(file, f"has a corrupt or cut-off GGUF header ({exc})") from None
    if magic != MAGIC:
        raise _bad(
            file,
            "is not a GGUF file (it does not start with the GGUF magic bytes)",
            hint="Point at a .gguf model file (or a Hugging Face model folder).",
        )
    if needed is not None and size < needed:
        raise _bad(file, f"is truncated: {size:,} bytes, but its header promises {needed:,}")


def _read(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError("the file ends inside the header")
    return data


def check_hf_folder(path: str | Path) -> None:
    """Raise ModelFileError unless ``path`` holds a config.json naming a model, and its weights."""
    from modelatlas.backends.hf_load import read_config
    from modelatlas.catalog.hf_meta import _bin_files, _indexed_files, _weight_files

    folder = Path(path)
    config = read_config(folder)  # names config.json when it is missing, empty or not JSON
    if not config.get("model_type") and not config.get("architectures"):
        raise _bad(
            folder / "config.json",
            "names no model (it has neither model_type nor architectures)",
            hint="Save the model again with save_pretrained(), which writes both.",
        )
    files = _indexed_files(folder) or _weight_files(folder)
    if not files and not _bin_files(folder):
        raise _bad(
            folder,
            "has no weight files (*.safetensors or pytorch_model*.bin)",
            hint="Save the model with save_pretrained(), or download the weights too.",
        )
    for file in files:
        _check_safetensors(file)


def _check_safetensors(file: Path) -> None:
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", _read(handle, 8))
            if length > size - 8:
                raise ValueError(f"a {length:,}-byte header in a {size:,}-byte file")
            header = json.loads(handle.read(length))
        ends = [int(e["data_offsets"][1]) for k, e in header.items() if k != "__metadata__"]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, struct.error) as exc:
        raise _bad(file, f"has a corrupt safetensors header ({exc})") from None
    needed = 8 + length + max(ends, default=0)
    if size < needed:
        raise _bad(file, f"is truncated: {size:,} bytes, but its header promises {needed:,}")


def _bad(file: Path, problem: str, hint: str = "Download the model again.") -> ModelFileError:
    return ModelFileError(f"{file} {problem}, so it cannot be added as a model.", hint=hint)
