"""GGUF header keys the llama.cpp backend needs (trained context, KV cache size per token).

A thin caller of ``modelatlas.gguf_reader``, the one GGUF header reader: it stops as soon as it
has the keys asked for, and words a bad file as a ``ModelFileError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from modelatlas.errors import ModelFileError
from modelatlas.gguf_reader import ArrayField, is_wanted, read_header


def read_keys(path: str | Path, wanted: Iterable[str]) -> dict[str, object]:
    """The values of the ``wanted`` keys (scalars and strings; None for arrays) in the header."""
    wanted = set(wanted)
    try:
        fields = read_header(path, wanted, tensors=False).fields
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"{path} has a corrupt or unreadable GGUF header ({exc}).", hint="Download the model again."
        ) from exc
    return {k: None if isinstance(v, ArrayField) else v for k, v in fields.items() if is_wanted(k, wanted)}


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
