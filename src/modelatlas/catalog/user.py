"""Models the user adds: hosted APIs, OpenAI-compatible servers and model files."""

from __future__ import annotations

from pathlib import Path

from modelatlas.catalog.bundled import is_bundled
from modelatlas.catalog.catalog import forget
from modelatlas.catalog.providers import PRESETS
from modelatlas.catalog.records import Modalities, Mode, ModelRecord, Price
from modelatlas.catalog.resolve import record_for_path, registered_records
from modelatlas.errors import ConfigError, UnknownModelError


def endpoint_record(
    model_id: str,
    *,
    base_url: str | None = None,
    remote_name: str | None = None,
    api_key_env: str | None = None,
    azure_endpoint: str | None = None,
    api_version: str | None = None,
    deployment: str | None = None,
    mode: Mode = "chat",
    context_length: int | None = None,
    price: Price | None = None,
) -> ModelRecord:
    """A record for a model behind an OpenAI-compatible API; provider presets fill the gaps."""
    from modelatlas.backends.openai_compat import OpenAIBackend

    provider = model_id.split("/", 1)[0]
    preset = PRESETS.get(provider)
    azure = bool((preset and preset.azure) or azure_endpoint or deployment)
    url = base_url or (preset.base_url if preset else None)
    if not url and not azure and provider != "openai":
        raise ConfigError(
            f"No base URL for {model_id}: {provider!r} is not a known provider.",
            hint=f"Pass --base-url (known providers: {', '.join(sorted(PRESETS))}).",
        )
    options = OpenAIBackend.options_for(
        azure=azure,
        base_url=url,
        model=remote_name,
        api_key_env=api_key_env or (preset.api_key_env if preset else None),
        azure_endpoint=azure_endpoint,
        api_version=api_version,
        deployment=deployment,
        context_length=context_length,
    )
    return ModelRecord(
        id=model_id, backend="openai", mode=mode, options=options, context_length=context_length, price=price
    )


def file_record(model_id: str, path: str, mode: Mode = "chat") -> ModelRecord:
    """A record for a .gguf file or a Hugging Face folder, refused when the file is broken."""
    from modelatlas.backends.declared import facts
    from modelatlas.catalog.file_check import check_gguf, check_hf_folder

    if mode == "transcription":
        return speech_folder_record(model_id, path)
    pipeline = (Path(path).expanduser() / "model_index.json").is_file()
    if mode == "image_generation" or (mode == "chat" and pipeline):  # a pipeline needs no --mode
        return image_record(model_id, path)
    found = record_for_path(Path(path))
    if facts(found).file_format == "gguf":
        check_gguf(found.location)
    else:
        check_hf_folder(found.location)
    return found.model_copy(update={"id": model_id, "mode": mode})


def speech_folder_record(model_id: str, path: str) -> ModelRecord:
    """A record for a faster-whisper (CTranslate2) model folder, refused when it lacks one of
    the four files faster-whisper reads."""
    from modelatlas.backends.whisper import MODEL_FILES  # no heavy import: faster-whisper loads later
    from modelatlas.errors import ModelFileError

    folder = Path(path).expanduser()
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFileError(
            f"{folder} is not a faster-whisper model folder: it lacks {', '.join(missing)}.",
            hint=f"Point --path at the folder holding {', '.join(MODEL_FILES)}.",
        )
    return ModelRecord(
        id=model_id,
        backend="whisper",
        mode="transcription",
        tasks=["speech-recognition"],
        modalities=Modalities(input=["audio"], output=["text"]),
        hosting="local",
        location=str(folder.resolve()),
    )


def image_record(model_id: str, path: str, price: Price | None = None) -> ModelRecord:
    """A record for a diffusers pipeline folder (model_index.json) or a single .safetensors/.ckpt
    checkpoint, run by the diffusers backend; refused when the path is neither."""
    from modelatlas.backends.diffusers_backend import SINGLE_FILE_SUFFIXES  # no torch import here
    from modelatlas.errors import ModelFileError

    target = Path(path).expanduser()
    folder = target.is_dir() and (target / "model_index.json").is_file()
    if not folder and not (target.is_file() and target.suffix.lower() in SINGLE_FILE_SUFFIXES):
        raise ModelFileError(
            f"{target} is not an image-generation model: neither a diffusers pipeline folder "
            "(with model_index.json) nor a .safetensors/.ckpt checkpoint.",
            hint="Point --path at the folder that a pipeline's save_pretrained() wrote, or at one "
            "checkpoint file.",
        )
    return ModelRecord(
        id=model_id,
        backend="diffusers",
        mode="image_generation",
        tasks=["image-generation"],
        modalities=Modalities(input=["text"], output=["image"]),
        architecture="diffusion",
        hosting="local",
        location=str(target.resolve()),
        price=price,
    )


def add(record: ModelRecord) -> ModelRecord:
    """Register ``record`` after checking that its backend exists and accepts its options."""
    from modelatlas import store
    from modelatlas.backends.registry import get_backend_class

    if is_bundled(record.id):
        raise ConfigError(
            f"{record.id} is a bundled model and cannot be replaced.",
            hint="Pick another id, for example my/" + record.id.split("/", 1)[1],
        )
    get_backend_class(record.backend).parse_options(record.options)
    store.add_model(record.id, record.model_dump(mode="json", exclude_none=True))
    forget()
    return record


def remove(model_id: str) -> None:
    from modelatlas import store

    if not store.remove_model(model_id):
        raise UnknownModelError(model_id, [r.id for r in registered_records()])
    forget()


def records_from_yaml(path: str) -> list[ModelRecord]:
    """User models from a YAML file: a list of records, or ``{models: [...]}``."""
    import yaml
    from pydantic import ValidationError

    from modelatlas.errors import CatalogDataError

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise CatalogDataError(f"Cannot read {path}: {exc.strerror}.", hint="Check the path.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise CatalogDataError(
            f"{path}{where}: malformed YAML: {reason}.", hint="Fix the file and try again."
        ) from None
    items = data.get("models") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise CatalogDataError(
            f"{path}: expected a list of models (or a 'models:' list).",
            hint="Each entry needs at least id and backend.",
        )
    records = []
    for index, item in enumerate(items):
        try:
            records.append(ModelRecord.model_validate(item).model_copy(update={"source": "user"}))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "entry"
            raise CatalogDataError(
                f"{path}: model #{index + 1}, field {field!r}: {err['msg']}.",
                hint="See README.md for the record fields.",
            ) from None
    return records
