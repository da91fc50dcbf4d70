"""Before training: the fine-tune's settings checked, the base model loaded, the data checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ConfigError
from modelatlas.strategies.finetune import loop
from modelatlas.strategies.finetune.data import TrainingSet, load_training


@dataclass
class Prepared:
    """A loaded base model and checked data, before any training."""

    base: ModelRecord
    loaded: Any  # backends.hf_load.Loaded
    train: TrainingSet
    val: TrainingSet | None

    @property
    def base_name(self) -> str:
        return self.base.id.split("/", 1)[-1].replace("/", "-")


def make_params(
    epochs: int = 1,
    lr: float = 2e-4,
    lora_r: int = 8,
    max_steps: int | None = None,
    batch_size: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """The settings that, with the base and the data, define a fine-tune; checked."""
    checks = [
        (epochs >= 1, "epochs must be 1 or more"),
        (lr > 0, "lr must be above 0"),
        (lora_r >= 1, "lora_r must be 1 or more"),
        (max_steps is None or max_steps >= 1, "max_steps must be 1 or more"),
        (1 <= batch_size <= 4, "batch_size must be between 1 and 4"),
    ]
    for ok, problem in checks:
        if not ok:
            raise ConfigError(f"Bad fine-tuning setting: {problem}.")
    return {
        "epochs": int(epochs),
        "lr": float(lr),
        "lora_r": int(lora_r),
        "max_steps": max_steps,
        "batch_size": int(batch_size),
        "seed": int(seed),
    }


def prepare(base_id: str, train_path: str | Path, val_path: str | Path | None = None) -> Prepared:
    """Load the base model (shared, once per process) and check the data against its tokenizer."""
    from modelatlas.backends.declared import facts
    from modelatlas.backends.hf_load import load
    from modelatlas.catalog.resolve import resolve

    base = resolve(base_id)
    declared = facts(base)
    if declared.adapter or base.source == "finetune":
        raise ConfigError(
            f"{base_id} is itself a fine-tune.", hint=f"Fine-tune its base, {base.base_model}, instead."
        )
    if not declared.trainable:
        raise ConfigError(
            f"{base_id} cannot be fine-tuned here: it is not a model file on this machine.",
            hint="Fine-tune a local model, a .gguf file or a Hugging Face folder: `modelatlas models list`.",
        )
    loaded = load(base.location)
    if loaded.kind != "causal":
        raise ConfigError(f"{base_id} is a {loaded.kind} model; LoRA fine-tuning here needs a causal LM.")

    def count(example) -> int:
        return len(loop.encode(loaded.tokenizer, example).ids)

    train = load_training(train_path, count, loaded.context_length)
    val = load_training(val_path, count, loaded.context_length) if val_path else None
    return Prepared(base, loaded, train, val)
