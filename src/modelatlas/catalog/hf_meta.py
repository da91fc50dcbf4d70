"""Facts about a Hugging Face model folder, from config.json and the safetensors headers only.

A safetensors file starts with an 8-byte little-endian header length and a JSON header that
lists every tensor's dtype and shape, so the parameter count needs no weights. Sharded
checkpoints name their files in ``model.safetensors.index.json``.

The count is of the tensors the checkpoint holds. Tied weights (GPT-2's lm_head and input
embedding, T5's shared embedding) are stored once, as ``model.parameters()`` counts them; a
persistent buffer saved with the weights (old BERT checkpoints keep ``position_ids``) is counted.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from modelatlas.backends.hf_load import CAUSAL_SUFFIXES, ENCODER_TYPES, is_vision_config, read_config
from modelatlas.errors import ModelFileError

INDEX_FILE = "model.safetensors.index.json"
MAX_HEADER_BYTES = 100 * 2**20  # safetensors refuses larger headers too
ENCODER_SUFFIXES = ("ForMaskedLM", "EncoderModel", "ForTokenClassification")
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")


def read_hf_folder(path: str | Path) -> dict[str, Any]:
    """The facts of a folder saved with ``save_pretrained`` (or a sentence-transformers folder)."""
    folder = Path(path).expanduser()
    config = read_config(folder)  # a ModelFileError that names config.json when it is bad
    parameters, weight_bytes = _weights(folder)
    st = is_sentence_transformers(folder)
    return {
        "model_type": config.get("model_type"),
        "architectures": [str(a) for a in config.get("architectures") or []],
        "architecture": architecture_class(config),
        "parameters": parameters,
        "weight_bytes": weight_bytes,
        "context_length": (_st_max_length(folder) if st else None) or context_length(config),
        "sentence_transformers": st,
        "vision": is_vision_config(config),  # an image-text-to-text model: takes images too
        "has_chat_template": has_chat_template(folder),
        "license": card_license(folder),
        "torch_dtype": config.get("torch_dtype") or config.get("dtype"),
    }


def is_model_folder(folder: Path) -> bool:
    """A config.json next to weights (a folder with only config.json holds no model to run)."""
    if not (folder / "config.json").is_file():
        return False
    return (folder / INDEX_FILE).is_file() or any(_weight_files(folder)) or any(_bin_files(folder))


def is_sentence_transformers(folder: Path) -> bool:
    return (folder / "modules.json").is_file() or (folder / "config_sentence_transformers.json").is_file()


def architecture_class(config: dict[str, Any]) -> str:
    """decoder-only, encoder-only, encoder-decoder or unknown, from a config.json."""
    names = [str(a) for a in config.get("architectures") or []]
    if config.get("is_encoder_decoder") or any(n.endswith("EncoderDecoderModel") for n in names):
        return "encoder-decoder"
    if config.get("model_type") in ENCODER_TYPES and not config.get("is_decoder"):
        return "encoder-only"
    if is_vision_config(config):  # LLaVA, SmolVLM, Qwen2-VL: a vision tower feeding a decoder
        return "decoder-only"
    if any(n.endswith(CAUSAL_SUFFIXES) for n in names) or config.get("is_decoder"):
        return "decoder-only"
    if any(n.endswith(ENCODER_SUFFIXES) for n in names):
        return "encoder-only"
    return "unknown"


def context_length(config: dict[str, Any]) -> int | None:
    """The trained window: max_position_embeddings, n_positions, … (also in a text_config)."""
    for source in (config, config.get("text_config") or {}):
        for key in CONTEXT_KEYS:
            value = source.get(key) if isinstance(source, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        data = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get("chat_template"))


def card_license(folder: Path) -> str | None:
    """The ``license:`` of the model card's YAML front matter (README.md), when it has one."""
    try:
        with (folder / "README.md").open(encoding="utf-8") as card:
            if card.readline().strip() != "---":
                return None
            for _, line in zip(range(200), card, strict=False):
                if line.strip() == "---":
                    break
                if line.startswith("license:"):
                    return line.split(":", 1)[1].strip().strip("'\"") or None
    except (OSError, UnicodeDecodeError):
        return None
    return None


def safetensors_parameters(file: Path) -> int:
    """The number of elements of every tensor in one safetensors file, from its header."""
    try:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > MAX_HEADER_BYTES:
                raise ValueError(f"header length {length} is out of range")
            header = json.loads(handle.read(length))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        return sum(
            math.prod(int(d) for d in entry["shape"])
            for name, entry in header.items()
            if name != "__metadata__"
        )
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise ModelFileError(
            f"{file} has a corrupt or unreadable safetensors header ({exc}).",
            hint="Download or save the model again.",
        ) from exc


def _weights(folder: Path) -> tuple[int | None, int | None]:
    """(parameters, bytes) of the folder's weights; parameters stay unknown without safetensors."""
    files = _indexed_files(folder) or _weight_files(folder)
    if files:
        return sum(safetensors_parameters(f) for f in files), sum(f.stat().st_size for f in files)
    bins = _bin_files(folder)
    return None, (sum(f.stat().st_size for f in bins) or None)


def _indexed_files(folder: Path) -> list[Path]:
    index = folder / INDEX_FILE
    if not index.is_file():
        return []
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = sorted({folder / str(name) for name in weight_map.values()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"Could not read {index}: {exc}.", hint="Download the model again.") from exc
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ModelFileError(f"{index} names missing shards: {', '.join(missing)}.", hint="Download again.")
    return files


def _weight_files(folder: Path) -> list[Path]:
    """The model's safetensors files (a PEFT adapter saved alongside is not the model)."""
    return sorted(f for f in folder.glob("*.safetensors") if not f.name.startswith("adapter_"))


def _bin_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("pytorch_model*.bin"))


def _st_max_length(folder: Path) -> int | None:
    """sentence-transformers truncates inputs at max_seq_length (sentence_bert_config.json)."""
    try:
        data = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("max_seq_length") if isinstance(data, dict) else None
    return value if isinstance(value, int) and value > 0 else None
