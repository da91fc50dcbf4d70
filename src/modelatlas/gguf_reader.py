"""Read a GGUF file's header (magic, version, counts, key/values, tensor table), never its weights.

The one GGUF header reader: ``backends`` (context length, KV cache size) and ``catalog`` (facts,
``models add`` checks) both call it. ``gguf.GGUFReader`` builds a numpy view for every item of
every array field, so Gemma 3's 262k-token vocabulary took 8.96 s; here an array of scalars is
stepped over in one jump and an array of strings by reading only each string's length, over an
mmap of the file: 29 ms for Gemma 3 270M, 11 ms for SmolLM2 135M (was 66 and 27 ms with a
trimmed GGUFReader).

Format problems raise ``GGUFFormatError`` (a ``ValueError``); each caller words its own message.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)  # version 1 had 32-bit counts; llama.cpp writes 3
MAX_ENTRIES = 1 << 20  # more keys or tensors than any real model: a corrupt count
MAX_STRING = 1 << 24  # a key, name or string value longer than 16 MiB: a corrupt length
MAX_DIMS = 8
DEFAULT_ALIGNMENT = 32

# GGUF value types: fixed-size scalars by type id, then string (8), array (9).
SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


class GGUFFormatError(ValueError):
    """The bytes are not a whole, well-formed GGUF header."""


@dataclass(frozen=True)
class ArrayField:
    """An array value, stepped over: only its item type and length are kept."""

    item_type: int
    count: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type: int  # ggml type id (gguf.GGMLQuantizationType)
    offset: int  # from the start of the tensor data

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class GGUFHeader:
    version: int
    tensor_count: int
    kv_count: int
    fields: dict[str, object] = field(default_factory=dict)  # scalars, strings, ArrayField
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int | None = None  # where tensor data starts; None when the table was not read
    byte_order: str = "<"

    @property
    def values(self) -> dict[str, object]:
        """The scalar and string fields (arrays left out)."""
        return {k: v for k, v in self.fields.items() if not isinstance(v, ArrayField)}

    def data_end(self) -> int | None:
        """The byte where the last tensor's data ends; the data start when a tensor type is unknown."""
        if self.data_offset is None:
            return None
        sizes = _quant_sizes()
        ends = []
        for t in self.tensors:
            if t.type not in sizes:
                return self.data_offset
            block, type_size = sizes[t.type]
            ends.append(t.offset + t.n_elements // block * type_size)
        return self.data_offset + max(ends, default=0)


def read_header(path: str | Path, wanted: Iterable[str] | None = None, tensors: bool = True) -> GGUFHeader:
    """The header of the GGUF file at ``path``.

    ``wanted`` (keys, or ``*.suffix`` patterns such as ``*.context_length``) limits the values
    decoded; with ``tensors=False`` reading stops once every wanted key is found. Raises
    ``OSError`` when the file cannot be read and ``GGUFFormatError`` when it is not GGUF.
    """
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            raise GGUFFormatError("the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _Parser(buf).header(None if wanted is None else set(wanted), tensors)


def is_wanted(key: str, wanted: set[str]) -> bool:
    """``*.context_length`` matches ``llama.context_length``, ``gemma3.context_length``, …"""
    return key in wanted or any(w.startswith("*.") and key.endswith(w[1:]) for w in wanted)


class _Parser:
    def __init__(self, buf) -> None:
        self.buf, self.size, self.pos, self.order = buf, len(buf), 0, "<"

    def header(self, wanted: set[str] | None, with_tensors: bool) -> GGUFHeader:
        if self.take(4) != MAGIC:
            raise GGUFFormatError("missing GGUF magic bytes")
        (version,) = self.unpack("I")
        if version & 0xFFFF == 0:  # a big-endian file, as gguf.GGUFReader detects it
            self.order, version = ">", struct.unpack(">I", struct.pack("<I", version))[0]
        if version not in SUPPORTED_VERSIONS:
            raise GGUFFormatError(f"unsupported GGUF version {version}")
        n_tensors, n_kv = self.unpack("QQ")
        if n_tensors > MAX_ENTRIES or n_kv > MAX_ENTRIES:
            raise GGUFFormatError(f"implausible counts ({n_tensors} tensors, {n_kv} keys)")
        header = GGUFHeader(version, n_tensors, n_kv, byte_order=self.order)
        found = header.fields
        for _ in range(n_kv):
            key = self.string()
            (kind,) = self.unpack("I")
            if kind == ARRAY:
                item_type, count = self.unpack("IQ")
                self.skip_items(item_type, count)
                found[key] = ArrayField(item_type, count)
            elif wanted is None or is_wanted(key, wanted) or key == "general.alignment":
                found[key] = self.value(kind)
                if not with_tensors and wanted is not None and _all_found(wanted, found):
                    return header
            else:
                self.skip_items(kind, 1)
        if with_tensors:
            header.tensors = [self.tensor() for _ in range(n_tensors)]
            alignment = found.get("general.alignment") or DEFAULT_ALIGNMENT
            if not isinstance(alignment, int) or alignment <= 0:
                raise GGUFFormatError(f"general.alignment is {alignment!r}")
            header.data_offset = -(-self.pos // alignment) * alignment
        return header

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > self.size:
            raise GGUFFormatError("the file ends inside the header")
        data, self.pos = self.buf[self.pos : end], end
        return data

    def unpack(self, fmt: str) -> tuple:
        s = struct.Struct(self.order + fmt)
        if self.pos + s.size > self.size:
            raise GGUFFormatError("the file ends inside the header")
        values = s.unpack_from(self.buf, self.pos)
        self.pos += s.size
        return values

    def string(self) -> str:
        (n,) = self.unpack("Q")
        if n > MAX_STRING:
            raise GGUFFormatError("string length out of range")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GGUFFormatError(f"a string that is not UTF-8 ({exc})") from None

    def value(self, kind: int) -> object:
        if kind in SCALAR_FORMATS:
            return self.unpack(SCALAR_FORMATS[kind])[0]
        if kind == STRING:
            return self.string()
        raise GGUFFormatError(f"unknown GGUF value type {kind}")

    def skip_items(self, kind: int, count: int) -> None:
        """Step over ``count`` values of ``kind``: one jump for scalars, lengths only for strings."""
        if kind in SCALAR_FORMATS:
            self.pos += struct.calcsize(SCALAR_FORMATS[kind]) * count
        elif kind == STRING:
            length, buf, size, pos = struct.Struct(self.order + "Q"), self.buf, self.size, self.pos
            for _ in range(count):  # the hot loop: 262k vocabulary strings in Gemma 3
                if pos + 8 > size:
                    raise GGUFFormatError("an array runs past the end of the file")
                pos += 8 + length.unpack_from(buf, pos)[0]
            self.pos = pos
        elif kind == ARRAY:
            for _ in range(count):
                inner_type, inner_count = self.unpack("IQ")
                self.skip_items(inner_type, inner_count)
        else:
            raise GGUFFormatError(f"unknown GGUF value type {kind}")
        if self.pos > self.size:
            raise GGUFFormatError("an array runs past the end of the file")

    def tensor(self) -> TensorInfo:
        name = self.string()
        (n_dims,) = self.unpack("I")
        if n_dims > MAX_DIMS:
            raise GGUFFormatError(f"a tensor with {n_dims} dimensions")
        shape = self.unpack(f"{n_dims}Q")
        kind, offset = self.unpack("IQ")
        return TensorInfo(name, tuple(shape), kind, offset)


def _all_found(wanted: set[str], found: dict[str, object]) -> bool:
    return all(w in found or (w.startswith("*.") and any(k.endswith(w[1:]) for k in found)) for w in wanted)


def _quant_sizes() -> dict[int, tuple[int, int]]:
    """(elements per block, bytes per block) by ggml type, from the gguf package when installed."""
    try:
        from gguf.constants import GGML_QUANT_SIZES
    except ImportError:  # without it the data length is not known
        return {}
    return {int(k): v for k, v in GGML_QUANT_SIZES.items()}
