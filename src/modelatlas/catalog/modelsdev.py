"""models.dev's catalog: its TOML tree (or its ``api.json``) as ModelRecords.

``read_tree`` turns a models.dev checkout into the ``api.json`` shape, applying ``base_model``
inheritance (a deep merge where the provider's own fields win, minus ``base_model_omit``).
``to_records`` maps that shape to records. Only facts the data gives are filled in; how to run
a model is set only when its provider speaks the OpenAI API (or Azure OpenAI).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelatlas.catalog.providers import PRESETS
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import CatalogDataError

log = logging.getLogger(__name__)

SOURCE = "models.dev"
AZURE_KEY_ENV = "AZURE_OPENAI_API_KEY"
OPENAI_NPM = {"@ai-sdk/openai-compatible", "@ai-sdk/openai"}
_SEGMENT_BAD = re.compile(r"[^A-Za-z0-9._:@+-]+")
_PROVIDER_BAD = re.compile(r"[^A-Za-z0-9._-]+")
_EMBED = re.compile(r"embed", re.I)
_CODE = re.compile(r"(?<![a-z])cod(e|er|ex|estral)(?![a-z])", re.I)
_TRANSCRIBE = re.compile(r"whisper|transcri|(?<![a-z])(asr|stt)(?![a-z])", re.I)
_LINK = re.compile(rb"\s*[^\s=\[\]\"'#]+\.toml\s*")
_RICH_INPUT = {"image", "audio", "video", "pdf"}
TOO_DEEP = "its values are nested too deeply to be a models.dev catalog."
# The models.dev field each record field is read from, so an error names what the user sees.
_SOURCE_FIELD = {
    "context_length": "limit.context",
    "max_output": "limit.output",
    "price": "cost",
    "knowledge_cutoff": "knowledge",
    "capabilities.tool_calling": "tool_call",
    "capabilities.attachments": "attachment",
    "capabilities.reasoning": "reasoning",
    "capabilities.structured_output": "structured_output",
}
# Fields whose type the mapping relies on before validation: (field, type, item type).
_SHAPES = (
    ("limit", dict, None),
    ("cost", dict, None),
    ("modalities", dict, None),
    ("modalities.input", list, str),
    ("modalities.output", list, str),
    ("weights", list, dict),
    ("benchmarks", list, dict),
    ("links", list, dict),
)


def read_tree(path: str | Path) -> dict[str, dict[str, Any]]:
    """A models.dev checkout as ``{provider_id: {id, name, env, npm, api, doc, models}}``."""
    root = Path(path)
    providers_dir = root / "providers"
    if not providers_dir.is_dir():
        raise CatalogDataError(
            f"{root} is not a models.dev checkout: it has no providers/ folder.",
            hint="Point at the folder that holds providers/ and models/.",
        )
    bases = {_model_id(f, root / "models"): _load(f) for f in _tomls(root / "models")}
    api: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in providers_dir.iterdir() if (p / "provider.toml").is_file()):
        provider = _load(folder / "provider.toml")
        if provider is None:
            continue
        models = {}
        for file in _tomls(folder / "models"):
            model_id, own = _model_id(file, folder / "models"), _load(file)
            if own is not None:
                models[model_id] = {"id": model_id, **_inherit(own, bases, file)}
        api[folder.name] = {"id": folder.name, **provider, "models": models}
    return api


def _tomls(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.toml")) if folder.is_dir() else []


def _model_id(file: Path, folder: Path) -> str:
    return file.relative_to(folder).with_suffix("").as_posix()


def _load(file: Path, hops: int = 0) -> dict[str, Any] | None:
    """A TOML file's data, following links; None (and a warning) for a link to nothing."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        log.warning("%s does not exist (a dangling link); skipped", file)
        return None
    except OSError as exc:
        raise CatalogDataError(f"{file}: cannot be read: {exc.strerror}.") from None
    if _LINK.fullmatch(raw) and hops < 8:
        # A checkout made without symlink support holds each symlink as a file with its target.
        return _load(file.parent / raw.decode().strip(), hops + 1)
    try:
        return _plain(tomllib.loads(raw.decode("utf-8")))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogDataError(f"{file}: invalid TOML: {exc}.") from None
    except RecursionError:
        raise CatalogDataError(f"{file}: {TOO_DEEP}") from None
    except UnicodeDecodeError as exc:
        raise CatalogDataError(f"{file}: not UTF-8 text (byte {exc.start}).") from None


def _plain(value: Any) -> Any:
    """TOML dates and times become ISO strings, so the data is JSON as api.json is."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def _inherit(own: dict[str, Any], bases: dict[str, dict], file: Path) -> dict[str, Any]:
    """``own`` on top of its base model, minus the base's fields named in ``base_model_omit``."""
    base_id = own.get("base_model")
    omit = own.pop("base_model_omit", [])
    if base_id is None:
        return own
    if not isinstance(base_id, str):
        raise CatalogDataError(f"{file}: field base_model: expected a string like 'maker/model'.")
    if not isinstance(omit, list) or not all(isinstance(p, str) for p in omit):
        raise CatalogDataError(f"{file}: field base_model_omit: expected a list of dotted paths.")
    base = bases.get(base_id)
    if base is None:
        log.warning("%s: base_model %r is not in models/; using the model's own fields only", file, base_id)
        return own
    inherited = _merge({}, base)  # a deep copy, so omitting never touches the shared base
    for dotted in omit:
        _drop(inherited, dotted.split("."))
    return _merge(inherited, own)


def _merge(into: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = _merge(into[key], value)
        elif isinstance(value, dict):
            into[key] = _merge({}, value)
        else:
            into[key] = list(value) if isinstance(value, list) else value
    return into


def _drop(data: dict[str, Any], path: list[str]) -> None:
    for key in path[:-1]:
        data = data.get(key)
        if not isinstance(data, dict):
            return
    data.pop(path[-1], None)


def to_records(api: dict[str, Any]) -> list[ModelRecord]:
    """Every provider model as a record, ids ``provider/model`` (sanitised and unique)."""
    records: list[ModelRecord] = []
    seen: set[str] = set()
    _check_providers(api)
    for provider_id, provider in api.items():
        for model_id, model in provider.get("models", {}).items():
            where = f"{provider_id}/{model_id}"
            if not isinstance(model, dict):
                raise CatalogDataError(f"{where}: expected an object, got {type(model).__name__}.")
            record_id = _unique(_safe_id(provider_id, model_id), seen)
            _check_shapes(model, where)
            try:
                records.append(_record(record_id, provider_id, provider, model_id, model))
            except ValidationError as exc:
                raise CatalogDataError(f"{where}: {_first_error(exc)}") from None
            except RecursionError:
                raise CatalogDataError(f"{where}: {TOO_DEEP}") from None
            except (TypeError, AttributeError, ValueError) as exc:
                raise CatalogDataError(f"{where}: unexpected data: {exc}") from None
    return records


def _check_providers(api: dict[str, Any]) -> None:
    """The provider fields the mapping reads, with the type it needs."""
    for provider_id, provider in api.items():
        if not isinstance(provider, dict) or not isinstance(provider.get("models", {}), dict):
            raise CatalogDataError(f"provider {provider_id!r}: expected an object with a 'models' object.")
        env = provider.get("env")
        if env is not None and not (isinstance(env, list) and all(isinstance(e, str) for e in env)):
            raise CatalogDataError(
                f"provider {provider_id!r}: field env: expected a list of variable names, got {_kind(env)}."
            )
        for name in ("name", "npm", "api", "doc"):
            if provider.get(name) is not None and not isinstance(provider[name], str):
                raise CatalogDataError(
                    f"provider {provider_id!r}: field {name}: expected a string, got {_kind(provider[name])}."
                )


def _check_shapes(model: dict[str, Any], where: str) -> None:
    """Fail on a container of the wrong type, naming the field (validation names the rest)."""
    for dotted, kind, item in _SHAPES:
        value: Any = model
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        if not isinstance(value, kind):
            wanted = "an object" if kind is dict else "a list"
            raise CatalogDataError(f"{where}: field {dotted}: expected {wanted}, got {_kind(value)}.")
        if item is not None and not all(isinstance(v, item) for v in value):
            bad = next(v for v in value if not isinstance(v, item))
            wanted = "strings" if item is str else "objects"
            raise CatalogDataError(f"{where}: field {dotted}: expected a list of {wanted}, got {_kind(bad)}.")


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {_short(value)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "record"
    for record_field, source_field in _SOURCE_FIELD.items():
        if field == record_field or field.startswith(record_field + "."):
            field = source_field + field[len(record_field) :]
            break
    return f"field {field}: {err['msg']} (got {_short(err.get('input'))})"


def _safe_id(provider_id: str, model_id: str) -> str:
    provider = _PROVIDER_BAD.sub("-", provider_id).strip("-") or "provider"
    segments = [_SEGMENT_BAD.sub("-", s).strip("-") for s in model_id.split("/")]
    return "/".join([provider, *(s for s in segments if s)]) if any(segments) else f"{provider}/model"


def _unique(record_id: str, seen: set[str]) -> str:
    candidate, n = record_id, 2
    while candidate in seen:
        candidate, n = f"{record_id}-{n}", n + 1
    seen.add(candidate)
    return candidate


def _record(record_id: str, provider_id: str, provider: dict, model_id: str, m: dict) -> ModelRecord:
    mode = _mode(record_id, m)
    limit, cost = m.get("limit") or {}, m.get("cost")
    backend, options = _how_to_run(provider_id, provider, model_id, m)
    return ModelRecord(
        id=record_id,
        name=m.get("name"),
        provider=provider_id,
        family=m.get("family"),
        mode=mode,
        tasks=_tasks(record_id, m, mode),
        modalities=_modalities(m.get("modalities")),
        open_weights=m.get("open_weights"),
        license=m.get("license"),
        hosting="hosted",
        context_length=limit.get("context") or None,  # 0 means "not given" (speech models)
        max_output=limit.get("output") or None,
        price=_price(cost),
        knowledge_cutoff=m.get("knowledge"),
        release_date=m.get("release_date"),
        capabilities={
            "tool_calling": m.get("tool_call"),
            "reasoning": m.get("reasoning"),
            "structured_output": m.get("structured_output"),
            "attachments": m.get("attachment"),
        },
        base_model=m.get("base_model"),
        weights=[{"label": w.get("label"), "url": w.get("url")} for w in m.get("weights") or []],
        benchmarks=[_benchmark(b) for b in m.get("benchmarks") or []],
        links=_links(provider, m),
        source=SOURCE,
        backend=backend,
        options=options,
    )


def _words(record_id: str, m: dict) -> str:
    return " ".join(str(x) for x in (record_id.split("/", 1)[1], m.get("name"), m.get("family")) if x)


def _mode(record_id: str, m: dict) -> str:
    """embedding, transcription (a model whose only task is speech recognition),
    image_generation (pictures out and no text: the images API's models) or chat."""
    outputs = (m.get("modalities") or {}).get("output") or []
    if "embedding" in outputs or _EMBED.search(_words(record_id, m)):
        return "embedding"
    if "image" in outputs and "text" not in outputs:
        return "image_generation"
    return "transcription" if _tasks(record_id, m, "chat") == ["speech-recognition"] else "chat"


def _tasks(record_id: str, m: dict, mode: str) -> list[str]:
    if mode == "embedding":
        return ["embeddings"]
    modalities = m.get("modalities") or {}
    inputs, outputs = set(modalities.get("input") or []), set(modalities.get("output") or [])
    words = _words(record_id, m)
    tasks = []
    if "text" in inputs and "text" in outputs:
        tasks += ["chat", "text-generation"]
        if _CODE.search(words):
            tasks.append("code")
    if "image" in outputs:
        tasks.append("image-generation")
    if "audio" in inputs and outputs == {"text"} and ("text" not in inputs or _TRANSCRIBE.search(words)):
        tasks.append("speech-recognition")
    if "audio" in outputs:
        tasks.append("text-to-speech")
    if "text" in inputs and inputs & _RICH_INPUT:
        tasks.append("multimodal")
    return tasks


def _modalities(value: Any) -> dict | None:
    if not isinstance(value, dict):
        return None
    return {"input": value.get("input") or [], "output": value.get("output") or []}


def _price(cost: Any) -> dict | None:
    if not isinstance(cost, dict) or ("input" not in cost and "output" not in cost):
        return None
    keys = ("input", "output", "cache_read")
    return {k: cost[k] for k in keys if cost.get(k) is not None}


def _benchmark(b: dict) -> dict:
    name = f"{b.get('name')} ({b['variant']})" if b.get("variant") else b.get("name")
    return {"name": name, **{k: b.get(k) for k in ("score", "metric", "source", "date")}}


def _links(provider: dict, m: dict) -> list[dict]:
    links = []
    if provider.get("doc"):
        label = f"{provider.get('name') or provider.get('id')} documentation"
        links.append({"label": label, "url": provider["doc"]})
    links += [{"label": x.get("label"), "url": x.get("url")} for x in m.get("links") or []]
    return links


def _how_to_run(provider_id: str, provider: dict, model_id: str, m: dict) -> tuple[str | None, dict]:
    """(backend, options) when the model speaks the OpenAI or Azure OpenAI API, else (None, {})."""
    from modelatlas.backends.openai_compat import OpenAIBackend

    override = m.get("provider") if isinstance(m.get("provider"), dict) else {}
    npm = override.get("npm") or provider.get("npm")
    api = override.get("api") or provider.get("api")
    if override.get("shape") == "responses" or (api and "${" in api):
        return None, {}  # the Responses API only, or a URL the user must fill in: not runnable as is
    if npm == "@ai-sdk/azure" and not override.get("api"):
        return "openai", OpenAIBackend.options_for(azure=True, api_key_env=AZURE_KEY_ENV, deployment=model_id)
    preset = PRESETS.get(provider_id)
    if not (npm in OPENAI_NPM and (api or provider_id == "openai")):
        if override.get("npm") or not (preset and preset.base_url):
            return None, {}
        api = preset.base_url  # a provider our presets know to speak the OpenAI API
    key_env = _key_env(provider.get("env") or []) or (preset.api_key_env if preset else None)
    base_url = None if provider_id == "openai" else api
    return "openai", OpenAIBackend.options_for(
        base_url=base_url or None, model=model_id or None, api_key_env=key_env or None
    )


def _key_env(env: list[str]) -> str | None:
    """The variable that holds the key: the first named like a key or token, else the first."""
    keys = [e for e in env if isinstance(e, str) and re.search(r"KEY|TOKEN", e)]
    return (keys or env or [None])[0]
