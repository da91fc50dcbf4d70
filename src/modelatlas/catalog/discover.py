"""Models on this machine: GGUF files and Hugging Face model folders found below known folders.

The scan reads headers only (``gguf_meta``, ``hf_meta``), never weights. A file or folder that
cannot be read is skipped with a logged warning; the scan itself does not fail.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path
from typing import Any

from modelatlas.backends.llamacpp_vision import projector_path
from modelatlas.catalog.bundled import BUNDLED, Bundled, bundled_location
from modelatlas.catalog.gguf_meta import architecture_class, read_gguf
from modelatlas.catalog.hf_meta import is_model_folder, is_sentence_transformers, read_hf_folder
from modelatlas.catalog.memory import estimate_gb, fits
from modelatlas.catalog.pipeline_meta import is_pipeline_folder, read_pipeline_folder
from modelatlas.catalog.records import Link, Modalities, ModelRecord
from modelatlas.config import settings
from modelatlas.errors import ModelFileError

logger = logging.getLogger(__name__)

MAX_DEPTH = 6  # hub/models--org--name/snapshots/<rev>/<subfolder>/file.gguf is 5 deep
SKIP_DIRS = {"blobs", "node_modules", "__pycache__", "site-packages"}
SKIP_GGUF_TYPES = {"adapter", "mmproj"}  # LoRA adapters and vision projectors are not models
SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})$")
GENERIC_NAMES = {"model", "models", "snapshot", "main", "weights"}
TASKS = {
    "chat": ["chat", "text-generation"],
    "completion": ["text-generation"],
    "embedding": ["embeddings"],
    "transcription": ["speech-recognition"],
    "image_generation": ["image-generation"],
}
# What a vision-language folder's record says beyond a chat model's: it reads images too.
VISION_FIELDS: dict[str, Any] = {
    "tasks": [*TASKS["chat"], "multimodal"],
    "modalities": {"input": ["text", "image"], "output": ["text"]},  # validated anew per record
}


def default_paths() -> list[Path]:
    """The Hugging Face cache, ~/.modelatlas/models, ./models and MODELATLAS_MODEL_PATHS."""
    current = settings()
    paths = [hf_hub_cache(), current.models_dir, Path.cwd() / "models", *current.model_paths]
    return list(dict.fromkeys(paths))


def hf_hub_cache() -> Path:
    """Where huggingface_hub keeps downloaded repos (models--org--name/snapshots/<rev>/)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "huggingface" / "hub"


def scan(paths: list[Path] | list[str] | None = None) -> list[ModelRecord]:
    """A record for every GGUF file and Hugging Face model folder below ``paths``."""
    roots = [Path(p).expanduser().absolute() for p in (default_paths() if paths is None else paths)]
    records: list[ModelRecord] = []
    taken: set[str] = set()
    for kind, path in _find(roots):
        try:
            reader = {"gguf": _gguf_record, "diffusers": _pipeline_record}.get(kind, _folder_record)
            record = reader(path)
        except Exception as exc:  # one bad model must not hide the others
            message = exc.message if isinstance(exc, ModelFileError) else f"{type(exc).__name__}: {exc}"
            logger.warning("Skipping %s: %s", path, message)
            continue
        if record is not None:
            records.append(record.model_copy(update={"id": _unique(record.id, taken)}))
    return records


def enrich_bundled(records: list[ModelRecord]) -> list[ModelRecord]:
    """``memory_gb`` and ``fits`` for the bundled models whose files are on this machine."""
    entries = {b.record.id: b for b in BUNDLED}
    enriched = []
    for record in records:
        entry = entries.get(record.id)
        if entry is not None and _installed_files(entry):
            memory = estimate_gb(
                _bundled_weights_bytes(entry),
                record.parameters,
                bits=32,
                context_length=record.context_length,
            )
            record = record.model_copy(update={"memory_gb": memory, "fits": fits(memory)})
        enriched.append(record)
    return enriched


def _installed_files(entry: Bundled) -> bool:
    """Whether the model's files are here: a chunked model's chunks (joined or not: a listing
    never assembles), another model's file or folder."""
    if entry.chunked is not None:
        return all(_importable(name) for name in entry.packages)
    return bundled_location(entry.record.id) is not None


def _bundled_weights_bytes(entry: Bundled) -> int | None:
    """The size of the weights file: a chunked model's published size (a faster-whisper
    folder's model.bin is its joined file), a bundled model file's own size; None for a Hugging
    Face folder, which is counted as float32 parameters (the transformers backend loads float32)."""
    if entry.chunked is not None:
        return entry.chunked.size
    location = bundled_location(entry.record.id)
    return location.stat().st_size if location is not None and location.is_file() else None


def _find(roots: list[Path]) -> list[tuple[str, Path]]:
    """("gguf", file) and ("hf", folder) pairs, each model once even when two roots overlap."""
    items: list[tuple[str, Path]] = []
    for root in roots:
        if root.is_file() and root.suffix.lower() == ".gguf":
            items.append(("gguf", root))
        elif root.is_dir():
            _walk(root, 0, items)
    unique: dict[Path, tuple[str, Path]] = {}
    for kind, path in items:
        unique.setdefault(path.resolve(), (kind, path))  # the first root to reach a model names it
    return list(unique.values())


def _walk(folder: Path, depth: int, out: list[tuple[str, Path]]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        logger.warning("Skipping the folder %s: %s", folder, exc.strerror or exc)
        return
    pipeline = is_pipeline_folder(folder)  # one model: its parts' folders are not looked into
    model_folder = pipeline or is_model_folder(folder)
    if model_folder:
        out.append(("diffusers" if pipeline else "hf", folder))
    for entry in entries:
        try:
            if entry.name.lower().endswith(".gguf") and entry.is_file():
                out.append(("gguf", Path(entry.path)))
            elif not model_folder and depth < MAX_DEPTH and _descend(entry):
                _walk(Path(entry.path), depth + 1, out)
        except OSError as exc:
            logger.warning("Skipping %s: %s", entry.path, exc.strerror or exc)


def _descend(entry: os.DirEntry) -> bool:
    hidden = entry.name.startswith(".")
    return not hidden and entry.name not in SKIP_DIRS and entry.is_dir(follow_symlinks=False)


def _gguf_record(path: Path) -> ModelRecord | None:
    shard = SHARD.match(path.stem)
    if shard and int(shard["index"]) != 1:
        return None  # the first shard stands for the whole model
    facts = read_gguf(path)
    if facts.get("type") in SKIP_GGUF_TYPES or facts.get("architecture") == "clip":
        logger.info("Skipping %s: a %s file, not a model.", path, facts.get("type") or "clip")
        return None
    files = _shards(path, shard) if shard else [path]
    parameters = facts["parameters"] if len(files) == 1 else sum(read_gguf(f)["parameters"] for f in files)
    architecture = architecture_class(facts.get("architecture"))
    mode = _mode(architecture == "encoder-only", facts["has_chat_template"])
    memory = estimate_gb(sum(f.stat().st_size for f in files), context_length=facts["context_length"])
    stem = shard["stem"] if shard else path.stem
    common = _common(path, mode, architecture, parameters, facts, memory)
    if mode == "chat" and projector_path(str(path), None) is not None:  # takes images (libmtmd)
        common.update(VISION_FIELDS)
    return ModelRecord(
        id=f"local/{_slug(stem)}",
        name=stem,
        family=facts.get("basename"),
        base_model=facts.get("base_model"),
        quantization=facts.get("quantization"),
        backend="llamacpp",
        runnable=_importable("llama_cpp"),
        **common,
    )


def _folder_record(folder: Path) -> ModelRecord:
    facts = read_hf_folder(folder)
    architecture = facts["architecture"]
    embedding = facts["sentence_transformers"] or architecture == "encoder-only"
    mode = "chat" if facts["vision"] else _mode(embedding, facts["has_chat_template"])
    # The transformers backend loads float32 by default: 4 bytes a parameter.
    memory = estimate_gb(parameters=facts["parameters"], bits=32, context_length=facts["context_length"])
    if memory is None:
        memory = estimate_gb(file_bytes=facts["weight_bytes"], context_length=facts["context_length"])
    repo = _hf_repo(folder)
    needs = ["transformers"] + (["sentence_transformers"] if is_sentence_transformers(folder) else [])
    vision = VISION_FIELDS if facts["vision"] else {}  # it also needs Pillow to open pictures
    needs += ["PIL"] if vision else []
    return ModelRecord(
        id=f"local/{_slug(repo.rsplit('/', 1)[-1] if repo else _folder_name(folder))}",
        name=repo or _folder_name(folder),
        family=facts.get("model_type"),
        weights=[Link(label="Hugging Face", url=f"https://huggingface.co/{repo}")] if repo else [],
        backend="transformers",
        options={"task": "embedding"} if embedding else {},
        runnable=all(_importable(n) for n in needs),
        **{**_common(folder, mode, architecture, facts["parameters"], facts, memory), **vision},
    )


def _pipeline_record(folder: Path) -> ModelRecord:
    """A diffusers pipeline folder (model_index.json): a text-to-image model for the diffusers backend."""
    facts = read_pipeline_folder(folder)
    memory = estimate_gb(file_bytes=facts["weight_bytes"])  # the backend loads float32 as saved
    repo = _hf_repo(folder)
    common = _common(folder, "image_generation", "diffusion", None, {}, memory)
    return ModelRecord(
        id=f"local/{_slug(repo.rsplit('/', 1)[-1] if repo else _folder_name(folder))}",
        name=repo or _folder_name(folder),
        family=facts["pipeline"],
        weights=[Link(label="Hugging Face", url=f"https://huggingface.co/{repo}")] if repo else [],
        backend="diffusers",
        runnable=all(_importable(n) for n in ("diffusers", "torch", "PIL")),
        **{**common, "modalities": Modalities(input=["text"], output=["image"])},
    )


def _mode(embedding: bool, chat_template: bool) -> str:
    return "embedding" if embedding else "chat" if chat_template else "completion"


def _common(path: Path, mode: str, architecture: str, parameters, facts, memory) -> dict[str, Any]:
    output = "embedding" if mode == "embedding" else "text"
    return {
        "hosting": "local",
        "location": str(path),
        "mode": mode,
        "tasks": TASKS[mode],
        "modalities": Modalities(input=["text"], output=[output]),
        "architecture": architecture,
        "parameters": parameters,
        "context_length": facts.get("context_length"),
        "license": facts.get("license"),
        "memory_gb": memory,
        "fits": fits(memory),
        "source": "local-scan",
    }


def _shards(first: Path, match: re.Match) -> list[Path]:
    count = int(match["count"])
    names = [f"{match['stem']}-{i:05d}-of-{count:05d}{first.suffix}" for i in range(1, count + 1)]
    files = [first.with_name(n) for n in names]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise ModelFileError(f"{first} is split; {', '.join(missing)} missing.", hint="Download them.")
    return files


def _hf_repo(folder: Path) -> str | None:
    """``org/name`` for a snapshot in the Hugging Face cache (models--org--name/snapshots/<rev>)."""
    parts = folder.parts
    for i in range(len(parts) - 2):
        if parts[i].startswith("models--") and parts[i + 1] == "snapshots":
            return "/".join(parts[i].removeprefix("models--").split("--"))
    return None


def _folder_name(folder: Path) -> str:
    """The folder's name, or its parent's when the name says nothing (model/, a revision hash)."""
    name = folder.name
    if name.lower() in GENERIC_NAMES or re.fullmatch(r"[0-9a-f]{40}", name):
        return folder.parent.name or name
    return name


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return slug or "model"


def _unique(model_id: str, taken: set[str]) -> str:
    candidate, n = model_id, 2
    while candidate in taken:
        candidate, n = f"{model_id}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
