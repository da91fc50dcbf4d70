"""Facts about a GGUF file, read from its header with the ``gguf`` package, without its weights.

``gguf.GGUFReader`` parses every item of every array field into its own numpy view, so a
262k-token vocabulary takes seconds. ``_HeaderReader`` is the same reader with one change: it
steps over array fields (tokenizer vocabularies, merges, scores), reading only their lengths.
Everything else, the tensor list included, comes from the unchanged reader. The facts are also
cached in a JSON file under the cache folder, keyed by the file's resolved path, size and mtime.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path
from typing import Any

from modelatlas.config import settings
from modelatlas.errors import ModelFileError

logger = logging.getLogger(__name__)

CACHE_FILE = "gguf_meta.json"
CACHE_VERSION = 1
GUESSED_FLAG = 1024  # llama.cpp ORs this into general.file_type when it guessed the type
parse_counts = {"files": 0}  # files parsed (not served from the cache); tests read it

# llama.cpp architecture names (general.architecture) by architecture class.
ENCODER_ARCHES = {
    "bert",
    "eurobert",
    "gemma-embedding",
    "jina-bert-v2",
    "jina-bert-v3",
    "modern-bert",
    "neo-bert",
    "nomic-bert",
    "nomic-bert-moe",
    "t5encoder",
}
ENCODER_DECODER_ARCHES = {"t5"}
DIFFUSION_ARCHES = {"dream", "llada", "llada-moe", "rnd1"}
DECODER_PREFIXES = (
    "afmoe", "apertus", "arcee", "arctic", "baichuan", "bailing", "bitnet", "bloom", "chameleon",
    "chatglm", "codeshell", "cohere", "command-r", "dbrx", "deci", "deepseek", "dots", "ernie",
    "exaone", "falcon", "gemma", "glm", "gpt", "granite", "grok", "grovemoe", "hunyuan", "internlm",
    "jais", "kimi", "lfm", "llama", "maincoder", "mimo", "minicpm", "minimax", "mistral", "mixtral",
    "mpt", "nemotron", "olmo", "openelm", "orion", "pangu", "phi", "plamo", "plm", "qwen", "refact",
    "seed", "smallthinker", "smollm", "stablelm", "starcoder", "step", "xverse",
)  # fmt: skip


def architecture_class(arch: str | None) -> str:
    """decoder-only, encoder-only, encoder-decoder, diffusion or unknown, for a llama.cpp arch name."""
    name = (arch or "").lower()
    if name in ENCODER_ARCHES:
        return "encoder-only"
    if name in ENCODER_DECODER_ARCHES:
        return "encoder-decoder"
    if name in DIFFUSION_ARCHES:
        return "diffusion"
    return "decoder-only" if name.startswith(DECODER_PREFIXES) else "unknown"


def read_gguf(path: str | Path) -> dict[str, Any]:
    """The facts of one GGUF file, from the cache when the file has not changed since."""
    file = Path(path).expanduser().resolve()
    try:
        stat = file.stat()
    except OSError as exc:
        raise ModelFileError(f"Cannot read {file}: {exc.strerror}.", hint="Check the path.") from exc
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    cache = _load_cache()
    entry = cache.get(str(file))
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("facts"), dict):
        return dict(entry["facts"])
    facts = _parse(file)
    cache[str(file)] = {"stamp": stamp, "facts": facts}
    _save_cache(cache)
    return facts


def _parse(file: Path) -> dict[str, Any]:
    parse_counts["files"] += 1
    try:
        reader = _open(file)
        return _facts(reader)
    except Exception as exc:  # numpy and the reader raise many types for one cause: a bad file
        raise ModelFileError(
            f"{file} is not a readable GGUF file ({type(exc).__name__}: {exc}).",
            hint="The file is corrupt or incomplete; download it again.",
        ) from exc


def _open(file: Path):
    try:
        return _reader_class()(file)
    except (AttributeError, TypeError, NotImplementedError) as exc:
        # The gguf package changed the internals _HeaderReader relies on: use the plain reader.
        logger.debug("Fast GGUF header reader failed on %s (%s); using gguf.GGUFReader.", file, exc)
        import gguf

        return gguf.GGUFReader(file)


def _facts(reader) -> dict[str, Any]:
    from gguf import GGUFValueType

    values = {
        name: field.contents()
        for name, field in reader.fields.items()
        if field.types and field.types[0] != GGUFValueType.ARRAY
    }
    arch = values.get("general.architecture")
    return {
        "architecture": arch,
        "type": values.get("general.type"),
        "parameters": int(sum(int(t.n_elements) for t in reader.tensors)),
        "tensor_count": len(reader.tensors),
        "quantization": _quantization(values.get("general.file_type"), reader.tensors),
        "context_length": values.get(f"{arch}.context_length"),
        "license": values.get("general.license"),
        "has_chat_template": "tokenizer.chat_template" in reader.fields,
        "name": values.get("general.name"),
        "size_label": values.get("general.size_label"),
        "basename": values.get("general.basename"),
        "base_model": _base_model(values),
        "split_count": values.get("split.count"),
    }


def _quantization(file_type: int | None, tensors) -> str | None:
    """Q4_K_M from general.file_type; else the type that holds most weights (F32 norms aside)."""
    from gguf import LlamaFileType

    if isinstance(file_type, int):
        try:
            name = LlamaFileType(file_type & ~GUESSED_FLAG).name
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    totals: dict[str, int] = {}
    for tensor in tensors:
        totals[tensor.tensor_type.name] = totals.get(tensor.tensor_type.name, 0) + int(tensor.n_elements)
    totals.pop("F32", None)
    return max(totals, key=totals.__getitem__) if totals else None


def _base_model(values: dict[str, Any]) -> str | None:
    """``org/name`` of the first base model, from its repo URL or organization and name."""
    url = values.get("general.base_model.0.repo_url")
    if isinstance(url, str) and "huggingface.co/" in url:
        return url.split("huggingface.co/", 1)[1].strip("/") or None
    org, name = values.get("general.base_model.0.organization"), values.get("general.base_model.0.name")
    if name:
        return f"{org}/{name}" if org else str(name)
    return None


def _reader_class():
    """``gguf.GGUFReader`` that steps over array fields instead of parsing each item."""
    import gguf
    import numpy as np

    class _HeaderReader(gguf.GGUFReader):
        def _get_field_parts(self, orig_offs: int, raw_type: int):
            if raw_type != gguf.GGUFValueType.ARRAY:
                return super()._get_field_parts(orig_offs, raw_type)
            item_type = self._get(orig_offs, np.uint32)
            count = self._get(orig_offs + 4, np.uint64)
            order = "<" if self.endianess == gguf.GGUFEndian.LITTLE else ">"
            end = _skip_items(memoryview(self.data), orig_offs + 12, int(item_type[0]), int(count[0]), order)
            types = [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType(int(item_type[0]))]
            return end - orig_offs, [item_type, count], [], types

    return _HeaderReader


_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def _skip_items(buf: memoryview, offs: int, item_type: int, count: int, order: str) -> int:
    """The offset just past ``count`` items of ``item_type`` starting at ``offs``."""
    size = len(buf)
    if item_type in _SCALAR_SIZES:
        offs += _SCALAR_SIZES[item_type] * count
    elif item_type == _STRING:
        length = struct.Struct(order + "Q")
        for _ in range(count):
            if offs + 8 > size:
                raise ValueError("an array runs past the end of the file")
            offs += 8 + length.unpack_from(buf, offs)[0]
    elif item_type == _ARRAY:
        header = struct.Struct(order + "IQ")
        for _ in range(count):
            if offs + 12 > size:
                raise ValueError("an array runs past the end of the file")
            inner_type, inner_count = header.unpack_from(buf, offs)
            offs = _skip_items(buf, offs + 12, inner_type, inner_count, order)
    else:
        raise ValueError(f"unknown GGUF value type {item_type}")
    if offs > size:
        raise ValueError("an array runs past the end of the file")
    return offs


def _cache_path() -> Path:
    return settings().cache_dir / CACHE_FILE


def _load_cache() -> dict[str, Any]:
    path = _cache_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("Ignoring the unreadable GGUF facts cache %s: %s", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _save_cache(files: dict[str, Any]) -> None:
    path = _cache_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        settings().make_dirs(path.parent)  # a home made here is made private
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "files": files}), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    except OSError as exc:
        logger.warning("Could not write the GGUF facts cache %s: %s", path, exc)
