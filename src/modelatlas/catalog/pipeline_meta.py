"""What a diffusers pipeline folder says about itself, read from its JSON files, never its weights.

A pipeline folder is what ``DiffusionPipeline.save_pretrained`` writes: ``model_index.json``
naming the pipeline class and one subfolder per part (unet/, vae/, text_encoder/...), each with
its own config and weights. The scan treats the folder as one model and does not look inside it:
its text_encoder/ alone would otherwise pass for a Hugging Face text model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelatlas.errors import ModelFileError

INDEX = "model_index.json"


def is_pipeline_folder(folder: Path) -> bool:
    return (folder / INDEX).is_file()


def read_pipeline_folder(folder: Path) -> dict[str, Any]:
    """The pipeline's class, its parts and its weights' size on disk (safetensors where a part
    has both formats, as diffusers loads them)."""
    try:
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"{folder / INDEX} cannot be read as JSON: {exc}.",
            hint="Write the pipeline again with save_pretrained().",
        ) from None
    if not isinstance(index, dict):
        raise ModelFileError(f"{folder / INDEX} is not a JSON object.", hint="Write it with save_pretrained.")
    parts = sorted(k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0])
    return {
        "pipeline": index.get("_class_name"),
        "parts": parts,
        "weight_bytes": sum(_part_bytes(folder / part) for part in parts),
    }


def _part_bytes(part: Path) -> int:
    if not part.is_dir():
        return 0
    files = [f for f in part.iterdir() if f.is_file()]
    chosen = [f for f in files if f.suffix == ".safetensors"] or [f for f in files if f.suffix == ".bin"]
    return sum(f.stat().st_size for f in chosen)
