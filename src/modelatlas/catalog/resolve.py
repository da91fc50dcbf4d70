"""Find the record of a model id: bundled models, registered models, or a path to a file."""

from __future__ import annotations

from pathlib import Path

from modelatlas.catalog.bundled import bundled_records, is_bundled, resolve_bundled
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ModelFileError


def registered_records() -> list[ModelRecord]:
    from modelatlas import store

    return [ModelRecord.model_validate(data) for data in store.list_registered().values()]


def runnable_records() -> list[ModelRecord]:
    """The models that can run now: bundled ones that are installed, and registered ones."""
    registered = [r.model_copy(update={"runnable": True}) for r in registered_records()]
    return [r for r in bundled_records() if r.runnable] + registered


def resolve(model: str) -> ModelRecord:
    """The record for ``model`` (an id, or a path to a GGUF file or a Hugging Face folder)."""
    if is_bundled(model):
        return resolve_bundled(model)
    from modelatlas import store

    data = store.get_registered(model)
    if data is not None:
        return ModelRecord.model_validate(data)
    if _looks_like_path(model):
        return record_for_path(Path(model))
    from modelatlas.catalog.catalog import load_catalog

    return load_catalog().get(model)


def record_for_path(path: Path) -> ModelRecord:
    """A record for a model file or folder given on the command line."""
    path = path.expanduser()
    if not path.exists():
        raise ModelFileError(f"No model file or folder at {path}.", hint="Check the path.")
    name = path.stem.lower().replace(" ", "-")
    if path.is_file() and path.suffix.lower() == ".gguf":
        from modelatlas.backends.llamacpp_vision import projector_path
        from modelatlas.catalog.discover import VISION_FIELDS

        vision = VISION_FIELDS if projector_path(str(path), None) else {}  # an mmproj beside it
        return ModelRecord(id=f"file/{name}", backend="llamacpp", location=str(path.resolve()), **vision)
    if path.is_dir() and (path / "model_index.json").exists():  # a diffusers pipeline
        from modelatlas.catalog.user import image_record

        return image_record(f"file/{name}", str(path))
    if path.is_dir() and (path / "config.json").exists():
        from modelatlas.backends.hf_load import is_vision_folder
        from modelatlas.catalog.discover import VISION_FIELDS

        vision = VISION_FIELDS if is_vision_folder(path) else {}  # a VLM takes images too
        return ModelRecord(id=f"file/{name}", backend="transformers", location=str(path.resolve()), **vision)
    raise ModelFileError(
        f"{path} is neither a .gguf file nor a Hugging Face model folder (with config.json).",
        hint="Point at a .gguf file or a folder saved with save_pretrained().",
    )


def _looks_like_path(model: str) -> bool:
    return model.endswith(".gguf") or model.startswith((".", "/", "~")) or Path(model).exists()
