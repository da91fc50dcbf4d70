"""LoRA fine-tuning on CPU: a base model in, a new catalog model ``ft/<base-name>/<name>`` out.

The base is loaded through the transformers backend's loader (a GGUF file is dequantized) and
trained on a private copy of its weights. The adapter is written to a temporary folder beside
its final place under ``<home>/adapters/<base-name>/<name>`` and moved there only when
training succeeded; then the model is registered. An interruption or an error leaves neither
an adapter folder nor a registered model, only the fine-tune's row with its status.
"""

from __future__ import annotations

import math
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelatlas.backends.registry import get_backend_class
from modelatlas.catalog.records import ModelRecord
from modelatlas.config import settings
from modelatlas.errors import ConfigError
from modelatlas.store import finetunes as rows
from modelatlas.strategies.finetune import loop
from modelatlas.strategies.finetune.leftovers import clean_leftovers
from modelatlas.strategies.finetune.loop import Step
from modelatlas.strategies.finetune.prepare import Prepared, make_params, prepare
from modelatlas.strategies.finetune.tracking import Tracker

NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass
class FineTuneResult:
    model_id: str
    record: ModelRecord
    finetune_id: str
    adapter_path: str
    data_hash: str
    params: dict[str, Any]
    steps: list[Step]
    train_loss: float  # the mean loss of the last epoch's worth of steps
    val_loss: float | None  # measured after the last step
    seconds: float


def finetune(
    base_id: str,
    train_path: str | Path,
    *,
    val_path: str | Path | None = None,
    epochs: int = 1,
    lr: float = 2e-4,
    lora_r: int = 8,
    max_steps: int | None = None,
    name: str | None = None,
    batch_size: int = 1,
    seed: int = 0,
    progress: Callable[[Step], None] | None = None,
    prepared: Prepared | None = None,
) -> FineTuneResult:
    """Fine-tune ``base_id`` with LoRA on ``train_path`` and register the result.

    ``prepared`` is what :func:`prepare` returned for the same base and files, to skip reading
    them again; ``progress`` is called after every step and may stop training by raising.
    """
    params = make_params(epochs, lr, lora_r, max_steps, batch_size, seed)
    clean_leftovers()  # a fine-tune killed earlier must not stay "running" beside this one
    ready = prepared or prepare(base_id, train_path, val_path)
    if ready.base.id != base_id or ready.train.path != str(train_path):
        raise ConfigError("The prepared data belongs to another base model or training file.")
    name = name or f"{ready.train.hash[:8]}-r{lora_r}"
    model_id = f"ft/{ready.base_name}/{name}"
    target = settings().home / "adapters" / ready.base_name / name
    _check_free(name, model_id, target)
    finetune_id = uuid.uuid4().hex
    rows.start_finetune(
        finetune_id,
        model_id=model_id,
        base_model=base_id,
        data_hash=ready.train.hash,
        params=params,
        adapter_path=str(target),
    )
    tracker = Tracker(model_id, {**params, "base_model": base_id, "data_hash": ready.train.hash})
    staging = target.parent / f".{name}.partial-{finetune_id[:8]}"
    start = time.perf_counter()
    try:
        steps = _train(ready, params, staging, finetune_id, tracker, progress)
        _check_free(name, model_id, target)
        staging.replace(target)
        result = _register(ready, params, model_id, target, finetune_id, steps, time.perf_counter() - start)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if not _registered(model_id):
            shutil.rmtree(target, ignore_errors=True)
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        rows.finish_finetune(finetune_id, status, seconds=time.perf_counter() - start)
        tracker.finish(status)
        raise
    tracker.finish("done", {"final_train_loss": result.train_loss, "final_val_loss": result.val_loss})
    return result


def find_existing(base_id: str, data_hash: str, params: dict[str, Any]) -> ModelRecord | None:
    """The registered fine-tune of ``base_id`` on data ``data_hash`` with these settings, if any."""
    from modelatlas import store

    wanted = make_params(**params)
    for row in rows.list_finetunes(base_model=base_id, data_hash=data_hash, status="done"):
        data = store.get_registered(row["model_id"])
        if row["params"] == wanted and data and Path(row["adapter_path"] or "").is_dir():
            return ModelRecord.model_validate(data)
    return None


def _train(ready: Prepared, params: dict, staging: Path, finetune_id: str, tracker, progress) -> list[Step]:
    from modelatlas.backends.hf_load import fresh_copy

    tokenizer = ready.loaded.tokenizer
    model = loop.add_lora(fresh_copy(ready.loaded), params["lora_r"], params["seed"])

    def on_step(step: Step) -> None:
        rows.record_step(finetune_id, step.step, step.epoch, step.loss, step.val_loss)
        tracker.step(step.step, step.loss, step.val_loss)
        if progress is not None:
            progress(step)

    steps = loop.train(
        model,
        [loop.encode(tokenizer, e) for e in ready.train.examples],
        [loop.encode(tokenizer, e) for e in ready.val.examples] if ready.val else None,
        epochs=params["epochs"],
        lr=params["lr"],
        batch_size=params["batch_size"],
        seed=params["seed"],
        max_steps=params["max_steps"],
        pad_id=tokenizer.pad_token_id or 0,
        on_step=on_step,
    )
    settings().make_dirs(staging.parent)
    model.save_pretrained(str(staging), save_embedding_layers=False)
    return steps


def _register(
    ready: Prepared,
    params: dict,
    model_id: str,
    target: Path,
    finetune_id: str,
    steps: list[Step],
    seconds: float,
) -> FineTuneResult:
    from modelatlas.catalog import user

    window = steps[-min(len(steps), math.ceil(ready.train.n / params["batch_size"])) :]
    train_loss = sum(s.loss for s in window) / len(window)
    val_loss = next((s.val_loss for s in reversed(steps) if s.val_loss is not None), None)
    finished = rows.finish_finetune(
        finetune_id, "done", train_loss=train_loss, val_loss=val_loss, seconds=seconds
    )
    lineage = {
        "base_model": ready.base.id,
        "data_hash": ready.train.hash,
        "params": params,
        "train_loss": train_loss,
        "val_loss": val_loss,
        "steps": len(steps),
        "seconds": round(seconds, 2),
        "finished_at": finished.isoformat(),
        "examples": ready.train.n,
        "finetune_id": finetune_id,
    }
    record = user.add(_record(ready, model_id, target, lineage))
    return FineTuneResult(
        model_id,
        record,
        finetune_id,
        str(target),
        ready.train.hash,
        params,
        steps,
        train_loss,
        val_loss,
        seconds,
    )


def _record(ready: Prepared, model_id: str, target: Path, lineage: dict[str, Any]) -> ModelRecord:
    base = ready.base
    return ModelRecord(
        id=model_id,
        name=f"{base.name} + LoRA {target.name}",
        family=base.family,
        mode="chat" if ready.loaded.tokenizer.chat_template else "completion",
        tasks=base.tasks,
        modalities=base.modalities,
        architecture=base.architecture,
        open_weights=base.open_weights,
        license=base.license,
        hosting="local",
        parameters=base.parameters,
        context_length=base.context_length or ready.loaded.context_length,
        description=f"A LoRA fine-tune (r={lineage['params']['lora_r']}) of {base.id} on "
        f"{ready.train.n} examples from {Path(ready.train.path).name}.",
        base_model=base.id,
        lineage=lineage,
        source="finetune",
        backend="transformers",
        location=base.location,
        options=get_backend_class("transformers").options_for(adapter=str(target)),
    )


def _check_free(name: str, model_id: str, target: Path) -> None:
    if not NAME.match(name):
        raise ConfigError(f"Bad fine-tune name {name!r}.", hint="Use letters, digits, '.', '_' and '-'.")
    if _registered(model_id):
        raise ConfigError(
            f"{model_id} already exists.",
            hint=f"Pick another name with --name, or remove it first: modelatlas models remove {model_id}",
        )
    if target.exists():  # left by a fine-tune whose model was removed since
        shutil.rmtree(target)


def _registered(model_id: str) -> bool:
    from modelatlas import store

    return store.get_registered(model_id) is not None
