"""Model cards: markdown, JSON and Hugging Face card (YAML front matter + markdown).

A card says only what the record and the store hold: a fact no source gives reads "unknown",
and a section with nothing behind it says so and points at the model's own pages.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import yaml

from modelatlas.catalog.card_samples import usage_markdown
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import InvalidRequestError
from modelatlas.formats import usd

UNKNOWN = "unknown"
FORMATS = ("md", "json", "hf")
CardFormat = Literal["md", "json", "hf"]

_MODE_NOUN = {
    "chat": "chat model",
    "completion": "base model (text completion)",
    "embedding": "embedding model",
    "transcription": "speech-recognition model",
    "image_generation": "image-generation model",
}


def render(record: ModelRecord, fmt: CardFormat = "md") -> str:
    """The card of ``record`` in ``fmt``, with the evaluation results the store holds for it."""
    if fmt not in FORMATS:
        raise InvalidRequestError(f"Unknown card format {fmt!r}.", hint=f"Pick one of: {', '.join(FORMATS)}.")
    from modelatlas import store

    results = store.results_for_model(record.id)
    if fmt == "json":
        return json.dumps(card_json(record, results), indent=2, ensure_ascii=False) + "\n"
    if fmt == "hf":
        return card_hf(record, results)
    return card_markdown(record, results)


def card_markdown(record: ModelRecord, results: list[dict]) -> str:
    sections = [
        f"# {record.name}\n\n{summary(record)}\n",
        facts_markdown(record),
        f"## Description\n\n{record.description or _no_info('description', record)}\n",
        f"## Intended use\n\n{intended_use(record)}\n",
        f"## Training data\n\n{training_data(record)}\n",
        lineage_markdown(record),
        f"## Limitations\n\n{limitations(record)}\n",
        usage_markdown(record),
        results_markdown(record, results),
        benchmarks_markdown(record),
        sources_markdown(record),
    ]
    return "\n".join(section for section in sections if section)


def card_json(record: ModelRecord, results: list[dict]) -> dict[str, Any]:
    """The record's facets plus our evaluation results and the published benchmarks."""
    data = record.facets()
    data["parameters_human"] = human_count(record.parameters) if record.parameters else None
    data["benchmarks"] = [b.model_dump(mode="json") for b in record.benchmarks]
    data["results"] = [_jsonable(r) for r in results]
    return data


def card_hf(record: ModelRecord, results: list[dict]) -> str:
    """A Hugging Face model card: YAML front matter, then the markdown card."""
    meta = yaml.safe_dump(hf_metadata(record, results), sort_keys=False, allow_unicode=True)
    return f"---\n{meta}---\n\n{card_markdown(record, results)}"


# --- facts ---------------------------------------------------------------------------------


def summary(record: ModelRecord) -> str:
    """One line from known facts only."""
    noun = _MODE_NOUN[record.mode]
    if record.architecture != "unknown":
        noun = f"{record.architecture} {noun}"
    if record.parameters:
        noun = f"{human_count(record.parameters)}-parameter {noun}"
    if record.provider and record.provider != "local":
        noun = f"{noun} from {record.provider}"
    parts = [f"`{record.id}`", noun]
    if record.open_weights is not None:
        weights = "open weights" if record.open_weights else "closed weights"
        parts.append(f"{weights} ({record.license})" if record.license else weights)
    if record.hosting:
        parts.append("runs on this machine" if record.hosting == "local" else "hosted API")
    return " · ".join(parts)


def facts(record: ModelRecord) -> list[tuple[str, str]]:
    """(label, value) rows of the facts table; an unknown fact reads "unknown"."""
    mods = record.modalities
    return [
        ("Provider", _text(record.provider)),
        ("Family", _text(record.family)),
        ("Mode", _MODE_NOUN[record.mode]),
        ("Tasks", ", ".join(record.tasks) or UNKNOWN),
        ("Modalities in", ", ".join(mods.input) if mods and mods.input else UNKNOWN),
        ("Modalities out", ", ".join(mods.output) if mods and mods.output else UNKNOWN),
        ("Architecture", record.architecture),
        ("Open weights", _yes_no(record.open_weights)),
        ("Licence", _text(record.license)),
        ("Hosting", _text(record.hosting)),
        ("Parameters", _parameters(record.parameters)),
        ("Quantization", _text(record.quantization)),
        ("Context length", _tokens(record.context_length)),
        ("Max output", _tokens(record.max_output)),
        ("Price per 1M tokens", price_text(record)),
        ("Knowledge cutoff", _text(record.knowledge_cutoff)),
        ("Release date", _text(record.release_date)),
        ("Capabilities", capabilities_text(record)),
        ("Memory to run", UNKNOWN if record.memory_gb is None else f"{record.memory_gb:.1f} GB"),
        ("Fits this machine", _yes_no(record.fits)),
        ("Runnable here now", _yes_no(record.runnable)),
        ("Backend", _text(record.backend)),
        ("Location", f"`{record.location}`" if record.location else UNKNOWN),
    ]


def facts_markdown(record: ModelRecord) -> str:
    return "## Facts\n\n" + _table(["fact", "value"], facts(record))


def human_count(n: int) -> str:
    """134_515_008 -> "135M"; three significant digits."""
    rounded = float(f"{n:.3g}")
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if rounded >= size:
            return f"{rounded / size:g}{unit}"
    return f"{n}"


def price_text(record: ModelRecord) -> str:
    price = record.price
    if price is None:
        return "none: it runs on this machine" if record.hosting == "local" else UNKNOWN
    if price.per_image and not (price.input or price.output):  # image models bill by the picture
        return f"{_usd(price.per_image)} per image (no token price)"
    text = f"{_usd(price.input)} in / {_usd(price.output)} out"
    cache = UNKNOWN if price.cache_read is None else _usd(price.cache_read)
    text += f"; cache read {cache}"
    if price.per_hour:
        text += f"; {_usd(price.per_hour)} per hour"
    return text


def capabilities_text(record: ModelRecord) -> str:
    caps = record.capabilities.model_dump()
    return "; ".join(f"{name.replace('_', ' ')}: {_yes_no(value)}" for name, value in caps.items())


# --- prose sections: only what the record supports ------------------------------------------


def intended_use(record: ModelRecord) -> str:
    if record.mode == "embedding":
        lines = [
            "An embedding model: it turns text into vectors, for search, clustering, "
            "classification and retrieval (RAG). It does not generate text."
        ]
    elif record.mode == "completion":
        lines = [
            "A base model without instruction tuning: it continues the text it is given. "
            "Prompt it with the start of a text or with few-shot examples, or fine-tune it."
        ]
    elif record.mode == "transcription":
        lines = [
            "A speech-recognition model: it turns spoken audio into text, a transcript with "
            "timestamped segments. It does not answer questions or follow instructions."
        ]
    elif record.mode == "image_generation":
        lines = [
            "An image-generation model: it draws pictures from a text prompt. It does not write "
            "text or answer questions."
        ]
    else:
        lines = ["A chat model: it answers a conversation of messages."]
    if record.tasks:
        lines.append(f"The catalog lists these tasks: {', '.join(record.tasks)}.")
    lines.append(_no_info("information on other intended uses", record))
    return " ".join(lines)


def training_data(record: ModelRecord) -> str:
    lines = []
    if record.knowledge_cutoff:
        lines.append(f"Its knowledge cutoff is {record.knowledge_cutoff}.")
    if record.base_model and record.base_model != record.id:
        lines.append(f"It is derived from `{record.base_model}`.")
    lines.append(_no_info("information on the training data", record))
    return " ".join(lines)


def limitations(record: ModelRecord) -> str:
    items = []
    if record.mode == "completion":
        items.append("It is not tuned to follow instructions: it continues the text it is given.")
    if record.mode == "embedding":
        items.append("It makes vectors only; it cannot answer or write text.")
    if record.mode == "transcription":
        items.append("It writes down what is said; it cannot chat or write text of its own.")
    if record.context_length:
        items.append(f"The prompt and the output together must fit in {record.context_length:,} tokens.")
    if record.knowledge_cutoff:
        items.append(f"It knows nothing that happened after {record.knowledge_cutoff}.")
    if record.quantization:
        items.append(
            f"The weights are quantized ({record.quantization}): outputs can differ "
            "slightly from the full-precision model."
        )
    if record.modalities and record.modalities.input:
        items.append(f"It accepts only {_and(record.modalities.input)} as input.")
    if not items:
        return _no_info("information on limitations", record)
    bullets = "".join(f"- {item}\n" for item in items)
    return f"{bullets}\n{_no_info('information on other limitations', record)}"


def lineage_markdown(record: ModelRecord) -> str:
    """For a fine-tuned model: its base, data, hyperparameters and final losses ("" otherwise)."""
    lineage = record.lineage
    if not lineage:
        return ""
    params = lineage.get("params") or {}
    rows = [
        ("Base model", f"`{lineage['base_model']}`" if lineage.get("base_model") else UNKNOWN),
        ("Training data hash", f"`{lineage['data_hash']}`" if lineage.get("data_hash") else UNKNOWN),
        ("Hyperparameters", ", ".join(f"{k}={v}" for k, v in params.items()) or UNKNOWN),
        ("Final training loss", _loss(lineage.get("train_loss"))),
        ("Final validation loss", _loss(lineage.get("val_loss"))),
        ("Steps", _text(lineage.get("steps"))),
        ("Finished", _date(_parsed(lineage.get("finished_at")))),
    ]
    return "## Lineage\n\n" + _table(["fact", "value"], rows)


def _parsed(value: Any) -> Any:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _loss(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "not measured"


# --- results, benchmarks, sources -------------------------------------------------------------


def results_markdown(record: ModelRecord, results: list[dict]) -> str:
    head = "## Evaluation results\n\n"
    if not results:
        return (
            f"{head}No evaluation results yet. Make one with `modelatlas eval DATASET --model {record.id}`.\n"
        )
    rows = [
        [_dataset(r), _text(r.get("strategy")), r["metric"], value_with_ci(r), str(r["n"]),
         f"`{r['run_id']}`", _date(r.get("created_at"))]
        for r in results
    ]  # fmt: skip
    headers = ["dataset", "strategy", "metric", "value (95% CI)", "n", "run", "date"]
    return head + _table(headers, rows)


def value_with_ci(result: dict) -> str:
    text = f"{result['value']:.4g}"
    if result.get("ci_low") is not None and result.get("ci_high") is not None:
        text += f" ({result['ci_low']:.4g}–{result['ci_high']:.4g})"
    return text


def benchmarks_markdown(record: ModelRecord) -> str:
    head = "## Published benchmarks\n\n"
    if not record.benchmarks:
        return f"{head}None published in the catalog's sources.\n"
    rows = [
        [b.name, f"{b.score:g}", _text(b.metric), _link_or_text(b.source), _text(b.date)]
        for b in record.benchmarks
    ]
    return head + _table(["benchmark", "score", "metric", "source", "date"], rows)


def sources_markdown(record: ModelRecord) -> str:
    lines = [f"- Catalog source: {_text(record.source)}"]
    lines += [f"- Weights: [{link.label}]({link.url})" for link in record.weights]
    lines += [f"- [{link.label}]({link.url})" for link in record.links]
    return "## Sources\n\n" + "\n".join(lines) + "\n"


# --- Hugging Face metadata ------------------------------------------------------------------

_HF_LICENSES = {
    "apache-2.0", "mit", "gemma", "openrail", "openrail++", "creativeml-openrail-m", "bigscience-openrail-m",
    "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "cc-by-4.0", "cc-by-sa-4.0",
    "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "bsd-3-clause", "gpl-3.0", "agpl-3.0", "lgpl-3.0", "mpl-2.0",
    "afl-3.0", "artistic-2.0", "bsl-1.0", "cc0-1.0", "unlicense", "other",
}  # fmt: skip


def hf_metadata(record: ModelRecord, results: list[dict]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if record.license:
        license_id = record.license.lower()
        meta["license"] = license_id if license_id in _HF_LICENSES else "other"
        if meta["license"] == "other" and license_id != "other":
            meta["license_name"] = record.license
    if record.base_model:
        meta["base_model"] = record.base_model
        if record.quantization and not record.id.startswith("ft/"):
            meta["base_model_relation"] = "quantized"
    tag = pipeline_tag(record)
    if tag:
        meta["pipeline_tag"] = tag
    meta["tags"] = hf_tags(record)
    if results:
        meta["model-index"] = model_index(record, results)
    return meta


def pipeline_tag(record: ModelRecord) -> str | None:
    """The Hugging Face pipeline tag that the record's mode, tasks and architecture imply."""
    tasks = set(record.tasks)
    inputs = set(record.modalities.input) if record.modalities else set()
    if record.mode == "embedding" or "embeddings" in tasks:
        return "feature-extraction"
    if "speech-recognition" in tasks:
        return "automatic-speech-recognition"
    if "text-to-speech" in tasks:
        return "text-to-speech"
    if "image-generation" in tasks or record.architecture == "diffusion":
        return "text-to-image"
    if record.architecture == "encoder-decoder":
        return "text2text-generation"
    if "image" in inputs or "multimodal" in tasks:
        return "image-text-to-text"
    return "text-generation"


def hf_tags(record: ModelRecord) -> list[str]:
    from modelatlas.backends.declared import facts

    tags = ["modelatlas", *record.tasks]
    if record.family:
        tags.append(record.family)
    declared = facts(record)
    if declared.file_format == "gguf" and not declared.adapter:  # a fine-tune ships a LoRA folder
        tags.append("gguf")
    if record.quantization:
        tags.append(record.quantization.lower())
    return list(dict.fromkeys(tags))


def model_index(record: ModelRecord, results: list[dict]) -> list[dict]:
    """HF ``model-index`` from our results: the newest score per dataset, strategy and metric."""
    task = pipeline_tag(record) or "text-generation"
    entries: dict[tuple, dict] = {}
    seen: set[tuple] = set()
    for r in results:  # newest first
        key = (r["dataset"], r.get("strategy"), r["metric"])
        if key in seen:
            continue
        seen.add(key)
        entry = entries.setdefault(key[:2], _index_entry(task, r["dataset"]))
        name = f"{r['metric']} ({r['strategy']})" if r.get("strategy") else r["metric"]
        entry["metrics"].append({"type": r["metric"], "value": r["value"], "name": name})
    return [{"name": record.id, "results": list(entries.values())}]


def _index_entry(task: str, dataset: str) -> dict:
    return {
        "task": {"type": task, "name": task.replace("-", " ").capitalize()},
        "dataset": {"name": dataset, "type": dataset},
        "metrics": [],
    }


# --- small helpers --------------------------------------------------------------------------


def _no_info(what: str, record: ModelRecord) -> str:
    links = [*record.weights, *record.links]
    where = ", ".join(f"[{link.label}]({link.url})" for link in links)
    see = f" See {where}." if where else ""
    return f"The catalog's sources give no {what}.{see}"


def _text(value: Any) -> str:
    return UNKNOWN if value is None or value == "" else str(value)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _usd(value: float) -> str:
    return usd(value)


def _yes_no(value: bool | None) -> str:
    return UNKNOWN if value is None else ("yes" if value else "no")


def _tokens(value: int | None) -> str:
    return UNKNOWN if value is None else f"{value:,} tokens"


def _parameters(value: int | None) -> str:
    return UNKNOWN if value is None else f"{human_count(value)} ({value:,})"


def _date(value: datetime | str | None) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return _text(value)


def _link_or_text(value: str | None) -> str:
    if value and value.startswith(("http://", "https://")):
        return f"[link]({value})"
    return _text(value)


def _table(headers: list[str], rows: list) -> str:
    lines = [headers, ["---"] * len(headers), *rows]
    return "".join("| " + " | ".join(_cell(c) for c in line) + " |\n" for line in lines)


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _dataset(result: dict) -> str:
    digest = result.get("dataset_hash")
    return f"{result['dataset']} (hash {digest[:12]})" if digest else result["dataset"]


def _jsonable(result: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in result.items()}
