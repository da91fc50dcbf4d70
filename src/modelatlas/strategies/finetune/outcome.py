"""What a fine-tune reports, as typed values: the data check before training, and the outcome.

`finetune --json` prints ``FinetuneOutcome.model_dump(mode="json")``: the data check under
``validation``, the new model and its losses, and the earlier fine-tunes found dead and cleaned
up (the shape it had as a dict; ``tests/test_json_shapes.py`` holds it to that).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from modelatlas.evals.results import Number, Result
from modelatlas.strategies.finetune.data import estimate_seconds
from modelatlas.strategies.finetune.leftovers import Interrupted
from modelatlas.strategies.finetune.prepare import Prepared

if TYPE_CHECKING:
    from modelatlas.strategies.finetune.train import FineTuneResult


class Duplicate(Result):
    line: int  # the repeated example's line
    repeats: int  # the line it repeats


class DataCheck(Result):
    """The training data as checked before training: size, tokens, duplicates, expected time."""

    base_model: str
    train: str
    examples: int
    tokens: int
    longest: int
    context_length: int | None = None
    too_long: int = 0  # a longer example stops the command before the check is shown
    duplicates: list[Duplicate] = Field(default_factory=list)
    data_hash: str
    val_examples: int = 0
    estimated_seconds: float


class InterruptedFinetune(Result):
    """An earlier fine-tune found dead (its process gone), marked interrupted, its leftovers removed."""

    finetune_id: str
    model: str
    status: str = "interrupted"
    pid: int | None = None
    steps: int = 0
    removed: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, found: Interrupted) -> InterruptedFinetune:
        return cls(
            finetune_id=found.finetune_id,
            model=found.model_id,
            pid=found.pid,
            steps=found.steps,
            removed=found.removed,
        )


class FinetuneOutcome(Result):
    """A finished fine-tune: the data check, the registered model, its adapter, losses and time."""

    validation: DataCheck
    model: str
    finetune_id: str
    adapter_path: str
    params: dict[str, Any] = Field(default_factory=dict)  # the training settings (make_params)
    steps: int
    first_loss: Number = None
    train_loss: Number = None
    val_loss: Number = None
    seconds: float
    interrupted: list[InterruptedFinetune] = Field(default_factory=list)


def check_data(ready: Prepared, params: dict[str, Any]) -> DataCheck:
    """The check of ``ready``'s training data, with the time training is expected to take here."""
    data = ready.train
    seconds = estimate_seconds(
        data.n,
        params["epochs"],
        data.total_tokens,
        batch_size=params["batch_size"],
        max_steps=params["max_steps"],
        val_tokens=ready.val.total_tokens if ready.val else 0,
    )
    return DataCheck(
        base_model=ready.base.id,
        train=data.path,
        examples=data.n,
        tokens=data.total_tokens,
        longest=data.longest,
        context_length=data.context_length,
        duplicates=[Duplicate(line=line, repeats=first) for line, first in data.duplicates],
        data_hash=data.hash,
        val_examples=ready.val.n if ready.val else 0,
        estimated_seconds=round(seconds, 1),
    )


def outcome(check: DataCheck, result: FineTuneResult, interrupted: list[Interrupted]) -> FinetuneOutcome:
    """The outcome of the fine-tune ``result`` after ``check``."""
    return FinetuneOutcome(
        validation=check,
        model=result.model_id,
        finetune_id=result.finetune_id,
        adapter_path=result.adapter_path,
        params=result.params,
        steps=len(result.steps),
        first_loss=result.steps[0].loss if result.steps else None,
        train_loss=result.train_loss,
        val_loss=result.val_loss,
        seconds=round(result.seconds, 2),
        interrupted=[InterruptedFinetune.of(found) for found in interrupted],
    )
