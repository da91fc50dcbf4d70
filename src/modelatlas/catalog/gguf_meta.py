"""Facts about a GGUF file, read from its header (``modelatlas.gguf_reader``), without its weights.

The reader steps over array fields (tokenizer vocabularies, merges, scores), reading only their
lengths, so Gemma 3's 262k-token vocabulary costs milliseconds, not the seconds
``gguf.GGUFReader`` takes. The facts are also cached in a JSON file under the cache folder,
keyed by the file's resolved path, size and mtime.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from modelatlas.config import settings
from modelatlas.errors import ModelFileError
from modelatlas.gguf_reader import GGUFFormatError, GGUFHeader, TensorInfo, read_header

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
        header = read_header(file)
        end = header.data_end()
        if end is not None and file.stat().st_size < end:
            raise GGUFFormatError(f"the tensor data ends at byte {end:,}, past the end of the file")
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"{file} is not a readable GGUF file ({type(exc).__name__}: {exc}).",
            hint="The file is corrupt or incomplete; download it again.",
        ) from exc
    return _facts(header)


def _facts(header: GGUFHeader) -> dict[str, Any]:
    values = header.values
    arch = values.get("general.architecture")
    return {
        "architecture": arch,
        "type": values.get("general.type"),
        "parameters": sum(t.n_elements for t in header.tensors),
        "tensor_count": len(header.tensors),
        "quantization": _quantization(values.get("general.file_type"), header.tensors),
        "context_length": values.get(f"{arch}.context_length"),
        "license": values.get("general.license"),
        "has_chat_template": "tokenizer.chat_template" in header.fields,
        "name": values.get("general.name"),
        "size_label": values.get("general.size_label"),
        "basename": values.get("general.basename"),
        "base_model": _base_model(values),
        "split_count": values.get("split.count"),
    }


def _quantization(file_type: object, tensors: list[TensorInfo]) -> str | None:
    """Q4_K_M from general.file_type; else the type that holds most weights (F32 norms aside)."""
    from gguf import GGMLQuantizationType, LlamaFileType

    if isinstance(file_type, int):
        try:
            name = LlamaFileType(file_type & ~GUESSED_FLAG).name
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    totals: dict[str, int] = {}
    for tensor in tensors:
        try:
            name = GGMLQuantizationType(tensor.type).name
        except ValueError:
            name = f"type {tensor.type}"
        totals[name] = totals.get(name, 0) + tensor.n_elements
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
