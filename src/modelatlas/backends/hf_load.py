"""Loading Hugging Face models for the transformers backend: kind detection, loading, sharing.

A location is a Hugging Face model folder (saved with ``save_pretrained``) or a ``.gguf`` file,
which transformers dequantizes to full precision on load. Each model is loaded once per
(location, task, dtype, threads, adapter) and shared by every backend instance that names it.
A LoRA adapter (a peft folder) is merged into a copy of the shared base, which loads once.
A vision-language folder (its config has a ``vision_config``) loads as kind "vision", with
``AutoModelForImageTextToText`` and its processor (see :mod:`modelatlas.backends.hf_vision`).
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelatlas.backends.base import require
from modelatlas.errors import ConfigError, MissingExtraError, ModelFileError

# model_type values of encoder-only models that make sentence vectors by mean pooling.
ENCODER_TYPES = {
    "albert", "bert", "camembert", "deberta", "deberta-v2", "distilbert", "electra", "mpnet",
    "modernbert", "nomic_bert", "roberta", "xlm-roberta",
}  # fmt: skip
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
VISION_SUFFIXES = ("ForImageTextToText", "VLForConditionalGeneration")
SANE_MAX_LENGTH = 1_000_000  # tokenizers without a limit report about 1e30


@dataclass
class Loaded:
    """A loaded model and its tokenizer. ``lock`` keeps callers from interleaving."""

    kind: str  # "causal", "seq2seq", "embedding" or "vision"
    model: Any
    tokenizer: Any
    context_length: int | None
    sentence_transformer: bool = False
    processor: Any = None  # a vision model's processor (its images and chat template)
    lock: threading.Lock = field(default_factory=threading.Lock)


_loaded: dict[tuple, Loaded] = {}
_loading: dict[tuple, threading.Lock] = {}  # one per key, so one slow load blocks no other
_users: dict[tuple, int] = {}  # backends holding each loaded model
_loaded_lock = threading.Lock()


def load(
    location: str,
    task: str = "auto",
    dtype: str = "float32",
    threads: int | None = None,
    adapter: str | None = None,
) -> Loaded:
    """The shared loaded model for these settings, loading it on first use."""
    path = Path(location).expanduser()
    key = _key(location, task, dtype, threads, adapter)
    with _loaded_lock:
        _users[key] = _users.get(key, 0) + 1
        if key in _loaded:
            return _loaded[key]
        key_lock = _loading.setdefault(key, threading.Lock())
    with key_lock:
        with _loaded_lock:
            if key in _loaded:  # another caller loaded it while this one waited
                return _loaded[key]
        if adapter:
            loaded = _with_adapter(load(location, task, dtype, threads), Path(adapter).expanduser())
        else:
            loaded = _load(path, task, dtype, threads)
        with _loaded_lock:
            _loaded[key] = loaded
        return loaded


def release(
    location: str,
    task: str = "auto",
    dtype: str = "float32",
    threads: int | None = None,
    adapter: str | None = None,
) -> None:
    """One user is done with the model; the last one drops it, so its memory can be freed."""
    key = _key(location, task, dtype, threads, adapter)
    with _loaded_lock:
        left = _users.get(key, 0) - 1
        if left > 0:
            _users[key] = left
            return
        _users.pop(key, None)
        _loaded.pop(key, None)


def _key(location: str, task: str, dtype: str, threads: int | None, adapter: str | None) -> tuple:
    path = Path(location).expanduser()
    return (str(path.resolve()), task, dtype, threads, _adapter_key(adapter))


def fresh_copy(loaded: Loaded) -> Any:
    """A private copy of a shared model's weights, to train or modify without touching it."""
    with loaded.lock:
        return copy.deepcopy(loaded.model)


def _adapter_key(adapter: str | None) -> tuple | None:
    """An adapter's path and files' modification times: a retrained adapter is loaded anew."""
    if not adapter:
        return None
    path = Path(adapter).expanduser().resolve()
    return (str(path), *(p.stat().st_mtime_ns for p in sorted(path.glob("adapter_*"))))


def _with_adapter(base: Loaded, adapter: Path) -> Loaded:
    """The base model with the LoRA adapter at ``adapter`` merged into a copy of its weights."""
    if not (adapter / "adapter_config.json").is_file():
        raise ModelFileError(
            f"No LoRA adapter at {adapter} (it has no adapter_config.json).",
            hint="Fine-tune again with `modelatlas finetune`, or fix the adapter option.",
        )
    peft = require("peft", extra="finetune")
    try:
        with warnings.catch_warnings():  # peft reads a property that transformers 5 deprecates
            warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
            model = peft.PeftModel.from_pretrained(fresh_copy(base), str(adapter)).merge_and_unload()
    except Exception as exc:  # peft raises many types for one cause: a bad or mismatched adapter
        raise ModelFileError(
            f"Could not apply the adapter at {adapter}: {type(exc).__name__}: {_short(exc)}",
            hint="Check that it was trained on this base model and that its files are complete.",
        ) from exc
    model.eval()
    return Loaded(base.kind, model, base.tokenizer, base.context_length, processor=base.processor)


def clear_cache() -> None:
    """Forget every loaded model (their memory is freed once no backend holds them)."""
    with _loaded_lock:
        _loaded.clear()
        _loading.clear()
        _users.clear()


def detect_kind(path: Path, task: str = "auto") -> str:
    """ "causal", "seq2seq", "embedding", "embedding-st" (a sentence-transformers folder) or
    "vision" (an image-text-to-text folder)."""
    if not path.exists():
        raise ModelFileError(f"No model file or folder at {path}.", hint="Check the path.")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelFileError(
                f"{path} is neither a .gguf file nor a Hugging Face model folder.",
                hint="Point at a .gguf file or a folder saved with save_pretrained().",
            )
        if task not in ("auto", "causal"):
            raise ConfigError(f"A .gguf file runs as a causal language model, not as {task!r}.")
        return "causal"
    is_st = (path / "modules.json").exists() or (path / "config_sentence_transformers.json").exists()
    if task == "embedding" or (task == "auto" and is_st):
        return "embedding-st" if is_st else "embedding"
    if task != "auto":
        return task
    return _kind_from_config(path, read_config(path))


def read_config(folder: Path) -> dict:
    """A folder's config.json, or a ModelFileError that says what is wrong with it."""
    file = folder / "config.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(
            f"{folder} has no config.json, so it is not a Hugging Face model folder.",
            hint="Point at a folder saved with save_pretrained(), or at a .gguf file.",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"Could not read {file}: {exc}.", hint="The file is corrupt; download or save the model again."
        ) from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{file} does not hold a JSON object.", hint="Save the model again.")
    return data


def is_vision_config(config: dict) -> bool:
    """Whether a config.json describes an image-text-to-text model (LLaVA, SmolVLM, Qwen2-VL,
    Gemma 3, PaliGemma...): each nests a ``vision_config``; the architecture names the rest.
    A contrastive pair of encoders (CLIPModel, SiglipModel) has one too but writes no text."""
    names = [str(a) for a in config.get("architectures") or []]
    if any(n.endswith(VISION_SUFFIXES) for n in names):
        return True
    encoders_only = bool(names) and all(n.endswith("Model") for n in names)
    return isinstance(config.get("vision_config"), dict) and not encoders_only


def is_vision_folder(location: str | Path | None) -> bool:
    """Whether ``location`` is a Hugging Face folder holding a vision-language model. Reads only
    config.json (cached by its modification time: facts ask it of every record)."""
    if not location:
        return False
    file = Path(location).expanduser() / "config.json"
    try:
        return _vision_config_file(str(file), file.stat().st_mtime_ns)
    except OSError:  # not a folder, or no config.json: not a vision folder
        return False


@functools.lru_cache(maxsize=256)
def _vision_config_file(file: str, mtime_ns: int) -> bool:
    try:
        data = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and is_vision_config(data)


def _kind_from_config(folder: Path, config: dict) -> str:
    architectures = config.get("architectures") or []
    if is_vision_config(config):
        return "vision"
    if config.get("is_encoder_decoder"):
        return "seq2seq"
    if any(str(a).endswith(CAUSAL_SUFFIXES) for a in architectures):
        return "causal"
    encoder_arch = any(str(a).endswith("Model") for a in architectures)
    if encoder_arch or config.get("model_type") in ENCODER_TYPES:
        return "embedding"
    raise ConfigError(
        f"Cannot tell what kind of model {folder} holds (architectures: {architectures or 'none'}).",
        hint='Set the option task to "causal", "seq2seq" or "embedding".',
    )


def _load(path: Path, task: str, dtype: str, threads: int | None) -> Loaded:
    kind = detect_kind(path, task)
    torch = require("torch", extra="finetune")
    if threads:
        torch.set_num_threads(threads)
    # transformers draws its own progress bars while loading; ours are the ones the user reads.
    require("transformers", extra="finetune").utils.logging.disable_progress_bar()
    try:
        if kind == "embedding-st":
            return _load_sentence_transformer(path)
        require("transformers", extra="finetune")
        if path.is_file():
            return _load_gguf(path, _torch_dtype(torch, dtype))
        if kind == "vision":
            return _load_vision(path, _torch_dtype(torch, dtype))
        return _load_folder(path, kind, _torch_dtype(torch, dtype))
    except (ModelFileError, ConfigError, MissingExtraError):
        raise
    except Exception as exc:  # transformers raises many types for one cause: a bad file
        raise ModelFileError(
            f"Could not load the model at {path}: {type(exc).__name__}: {_short(exc)}",
            hint="Check that the file or folder is complete and is a model transformers can read.",
        ) from exc


def _load_gguf(path: Path, dtype: Any) -> Loaded:
    require("gguf", extra="finetune")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelFileError(
                f"{path} is not a GGUF file (its first bytes are not 'GGUF').",
                hint="The file is corrupt or has the wrong name; download it again.",
            )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=dtype)
    return _ready("causal", model, tokenizer)


def _load_folder(path: Path, kind: str, dtype: Any) -> Loaded:
    import transformers

    auto = {
        "causal": transformers.AutoModelForCausalLM,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
        "embedding": transformers.AutoModel,
    }[kind]
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    model = auto.from_pretrained(str(path), dtype=dtype)
    return _ready(kind, model, tokenizer)


def _load_vision(path: Path, dtype: Any) -> Loaded:
    """An image-text-to-text model and its processor (which holds the tokenizer)."""
    import transformers

    processor = transformers.AutoProcessor.from_pretrained(str(path))
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        raise ModelFileError(
            f"{path} holds a vision model whose processor has no tokenizer.",
            hint="Save the processor with save_pretrained() (it writes the tokenizer files too).",
        )
    model = transformers.AutoModelForImageTextToText.from_pretrained(str(path), dtype=dtype)
    loaded = _ready("vision", model, tokenizer)
    loaded.processor = processor
    return loaded


def _load_sentence_transformer(path: Path) -> Loaded:
    st = require("sentence_transformers", extra="rag", package="sentence-transformers")
    model = st.SentenceTransformer(str(path), device="cpu")
    model.eval()
    limit = model.max_seq_length if model.max_seq_length else None
    return Loaded("embedding", model, model.tokenizer, limit, sentence_transformer=True)


def _ready(kind: str, model: Any, tokenizer: Any) -> Loaded:
    model.eval()
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return Loaded(kind, model, tokenizer, _context_length(model.config, tokenizer))


def _context_length(config: Any, tokenizer: Any) -> int | None:
    # A vision model's window is its language model's (LLaVA nests it in text_config).
    for source in (config, getattr(config, "text_config", None)):
        for name in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
            value = getattr(source, name, None)
            if isinstance(value, int) and value > 0:
                return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < SANE_MAX_LENGTH else None


def _torch_dtype(torch: Any, name: str) -> Any:
    if name == "auto":
        return "auto"
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ConfigError(f"Unknown dtype {name!r}.", hint="Use float32, float16, bfloat16 or auto.")
    return value


def _short(exc: Exception, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
