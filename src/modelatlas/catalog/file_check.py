"""Check a model file or folder when it is added, so a broken one is refused there, not at the first run.

A GGUF file must parse to the end of its header (magic, key/value pairs, tensor table), and be as
long as the tensor data that header promises: a cut-off download parses fine but is too short.
A Hugging Face folder needs a config.json that names the model (model_type or architectures)
and weight files whose safetensors headers parse and fit in their files. Nothing is loaded: a
135M GGUF checks in about 50 ms (its vocabulary is stepped over string by string).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from modelatlas.backends.gguf_header import _skip, _string, _value
from modelatlas.errors import ModelFileError

MAX_ENTRIES = 1 << 20  # more keys or tensors than any real model: a corrupt count
DEFAULT_ALIGNMENT = 32


def check_gguf(path: str | Path) -> None:
    """Raise ModelFileError unless ``path`` is a whole GGUF file."""
    file = Path(path)
    size = file.stat().st_size
    if size == 0:
        raise _bad(file, "is empty (0 bytes)")
    try:
        with file.open("rb") as f:
            magic = f.read(4)
            needed = _data_end(f) if magic == b"GGUF" else None
    except OSError as exc:
        raise _bad(file, f"cannot be read ({exc.strerror})", hint="Check its permissions.") from None
    except (ValueError, struct.error, UnicodeDecodeError, OverflowError) as exc:
        raise _bad(file, f"has a corrupt or cut-off GGUF header ({exc or type(exc).__name__})") from None
    if magic != b"GGUF":
        raise _bad(
            file,
            "is not a GGUF file (it does not start with the GGUF magic bytes)",
            hint="Point at a .gguf model file (or a Hugging Face model folder).",
        )
    if needed is not None and size < needed:
        raise _bad(file, f"is truncated: {size:,} bytes, but its header promises {needed:,}")


def _data_end(f) -> int | None:
    """The byte where the last tensor's data ends (None when a tensor type is unknown)."""
    version, n_tensors, n_kv = struct.unpack("<IQQ", _read(f, 20))
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    if n_tensors > MAX_ENTRIES or n_kv > MAX_ENTRIES:
        raise ValueError(f"implausible counts ({n_tensors} tensors, {n_kv} keys)")
    alignment = DEFAULT_ALIGNMENT
    for _ in range(n_kv):
        key = _string(f)
        (kind,) = struct.unpack("<I", _read(f, 4))
        if key == "general.alignment":
            alignment = int(_value(f, kind) or DEFAULT_ALIGNMENT)
        else:
            _skip(f, kind)
    ends = [_tensor_end(f) for _ in range(n_tensors)]
    start = -(-f.tell() // alignment) * alignment  # tensor data starts at the next aligned byte
    if any(end is None for end in ends):
        return start
    return start + max(ends, default=0)


def _tensor_end(f) -> int | None:
    _string(f)
    (n_dims,) = struct.unpack("<I", _read(f, 4))
    if n_dims > 8:
        raise ValueError(f"a tensor with {n_dims} dimensions")
    dims = struct.unpack(f"<{n_dims}Q", _read(f, 8 * n_dims))
    kind, offset = struct.unpack("<IQ", _read(f, 12))
    sizes = _quant_sizes()
    if kind not in sizes:
        return None
    block, type_size = sizes[kind]
    elements = 1
    for d in dims:
        elements *= d
    return offset + elements // block * type_size


def _quant_sizes() -> dict[int, tuple[int, int]]:
    """(elements per block, bytes per block) by ggml type, from the gguf package when installed."""
    try:
        from gguf.constants import GGML_QUANT_SIZES
    except ImportError:  # without it only the header is checked, not the length
        return {}
    return {int(k): v for k, v in GGML_QUANT_SIZES.items()}


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
