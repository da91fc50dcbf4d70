"""Read GGUF metadata keys straight from the file header, stopping as soon as we have what we need.

The ``gguf`` package parses every key, including tokenizer arrays of 100k+ strings, which takes
seconds on a large vocabulary; reading the few scalar keys we need takes microseconds.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from modelatlas.errors import ModelFileError

# GGUF value types: fixed-size scalars by type id, then string (8), array (9).
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


def read_keys(path: str | Path, wanted: Iterable[str]) -> dict[str, object]:
    """The values of the ``wanted`` keys (scalars and strings) found in the header."""
    wanted = set(wanted)
    found: dict[str, object] = {}
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise ValueError("missing GGUF magic bytes")
            version, _n_tensors, n_kv = struct.unpack("<IQQ", f.read(20))
            if version < 2:
                raise ValueError(f"GGUF version {version} is too old")
            for _ in range(n_kv):
                key = _string(f)
                (kind,) = struct.unpack("<I", f.read(4))
                if key in wanted or _is_wanted_pattern(key, wanted):
                    found[key] = _value(f, kind)
                    if wanted <= found.keys():
                        break
                else:
                    _skip(f, kind)
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"{path} has a corrupt or unreadable GGUF header ({exc}).", hint="Download the model again."
        ) from exc
    return found


def _is_wanted_pattern(key: str, wanted: set[str]) -> bool:
    """``*.context_length`` matches ``llama.context_length``, ``gemma3.context_length``, …"""
    return any(w.startswith("*.") and key.endswith(w[1:]) for w in wanted)


def _string(f) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    if n > 1 << 24:
        raise ValueError("string length out of range")
    return f.read(n).decode("utf-8")


def _value(f, kind: int):
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    if kind == _STRING:
        return _string(f)
    _skip(f, kind)
    return None


def _skip(f, kind: int) -> None:
    if kind in _SCALARS:
        f.seek(struct.calcsize(_SCALARS[kind]), 1)
    elif kind == _STRING:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(n, 1)
    elif kind == _ARRAY:
        item_kind, count = struct.unpack("<IQ", f.read(12))
        if item_kind in _SCALARS:
            f.seek(struct.calcsize(_SCALARS[item_kind]) * count, 1)
        else:
            for _ in range(count):
                _skip(f, item_kind)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


def kv_bytes_per_token(path: str | Path, bytes_per_value: int = 2) -> int | None:
    """Bytes of K and V cache one token takes (f16 cells), from the header; None if unknown."""
    keys = read_keys(path, ["general.architecture"])
    arch = keys.get("general.architecture")
    if not isinstance(arch, str):
        return None
    names = ("block_count", "embedding_length", "attention.head_count", "attention.head_count_kv")
    facts = read_keys(path, [f"{arch}.{n}" for n in names] + [f"{arch}.attention.key_length"])
    layers = facts.get(f"{arch}.block_count")
    width = facts.get(f"{arch}.embedding_length")
    heads = facts.get(f"{arch}.attention.head_count")
    kv_heads = facts.get(f"{arch}.attention.head_count_kv", heads)
    if not all(isinstance(v, int) and v > 0 for v in (layers, width, heads, kv_heads)):
        return None
    head_dim = facts.get(f"{arch}.attention.key_length") or width // heads
    return 2 * layers * kv_heads * int(head_dim) * bytes_per_value
