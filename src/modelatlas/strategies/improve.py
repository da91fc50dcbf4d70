"""`improve`: zero-shot, few-shot, RAG, fine-tuning and fine-tuning plus RAG, head to head.

Every approach answers the same test set in one evaluation run, so the comparisons are paired.
The report puts quality (with intervals and significance against the zero-shot baseline) beside
cost per 1,000 queries, latency, prompt size and the one-off training time, and ends with a
recommendation derived from those numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from modelatlas.errors import ConfigError
from modelatlas.strategies.results import TunedModel

BASELINE = "zero-shot"


@dataclass
class Approach:
    name: str  # "zero-shot", "few-shot", "RAG", "fine-tuned", "fine-tuned + RAG"
    model: str
    strategy: str


@dataclass
class Setup:
    approaches: list[Approach]
    kb: str | None = None
    finetune: TunedModel | None = None
    notes: list[str] = field(default_factory=list)


def kb_name(docs: str) -> str:
    """A knowledge base per docs folder: the same folder reuses (and incrementally updates) it."""
    digest = hashlib.sha256(str(Path(docs).resolve()).encode()).hexdigest()[:8]
    return f"improve-{Path(docs).resolve().name[:24].lower()}-{digest}".replace(" ", "-")


def approaches(
    model: str, *, few_shot: int, has_pool: bool, kb: str | None, tuned: str | None
) -> list[Approach]:
    found = [Approach(BASELINE, model, "zero-shot")]
    if few_shot and has_pool:
        found.append(Approach("few-shot", model, f"few-shot:{few_shot}"))
    if kb:
        found.append(Approach("RAG", model, f"rag:{kb}"))
    if tuned:
        found.append(Approach("fine-tuned", tuned, "zero-shot"))
    if tuned and kb:
        found.append(Approach("fine-tuned + RAG", tuned, f"rag:{kb}"))
    return found


def check_few_shot(dataset: str, train: str | None, shots: int, limit: int | None) -> None:
    """Refuse, before any indexing or fine-tuning, a few-shot approach whose pool holds no
    example it could send (it would silently run as zero-shot)."""
    if not (train and shots):
        return
    from modelatlas.evals.datasets import load_dataset
    from modelatlas.strategies.prompting import check_pool, parse_strategy

    items = load_dataset(dataset, limit=limit).items
    # The plan warns about items short of examples later; here only a pool of none is refused.
    check_pool(parse_strategy(f"few-shot:{shots}"), items, load_dataset(train).items, warn=False)


def prepare(model: str, *, docs: str | None, train: str | None, progress=None, finetune_args=None) -> Setup:
    """Index the documents and fine-tune on the training data, reusing earlier work where it matches."""
    from modelatlas.catalog.resolve import resolve

    record = resolve(model)
    kb = None
    notes: list[str] = []
    if docs:
        from modelatlas.rag.index import index

        kb = kb_name(docs)
        report = index([docs], kb, progress=progress)
        notes.append(
            f"Knowledge base {kb}: {report.chunks} chunks; files {report.added} new, "
            f"{report.updated} changed, {report.unchanged} unchanged."
        )
    tuned = None
    if train:
        tuned = _finetune(record, train, finetune_args or {}, progress, notes)
    return Setup(approaches=[], kb=kb, finetune=tuned, notes=notes)


def _finetune(record, train: str, args: dict, progress, notes: list[str]) -> TunedModel:
    if record.hosting != "local":
        raise ConfigError(
            f"Fine-tuning runs here, on a local base model; {record.id} is hosted.",
            hint="Use --model local/smollm2-135m-instruct, or leave out --train.",
        )
    from modelatlas.strategies.finetune.prepare import prepare as prepare_data
    from modelatlas.strategies.finetune.train import find_existing, finetune

    ready = prepare_data(record.id, train)
    found = find_existing(record.id, ready.train.hash, args)
    if found is not None:
        lineage = found.lineage or {}
        notes.append(f"Reused the fine-tune {found.id} (same base, data and settings).")
        return TunedModel(
            model_id=found.id,
            seconds=lineage.get("seconds"),
            train_loss=lineage.get("train_loss"),
            val_loss=lineage.get("val_loss"),
            reused=True,
        )
    result = finetune(record.id, train, progress=progress, prepared=ready, **args)
    notes.append(
        f"Fine-tuned {result.model_id} in {result.seconds:.0f} s (train loss {result.train_loss:.3f})."
    )
    return TunedModel(
        model_id=result.model_id,
        seconds=result.seconds,
        train_loss=result.train_loss,
        val_loss=result.val_loss,
        reused=False,
    )
