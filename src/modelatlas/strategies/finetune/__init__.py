"""LoRA fine-tuning: checked training data in, a registered ``ft/<base-name>/<name>`` model out."""

from modelatlas.strategies.finetune.data import Example, TrainingSet, estimate_seconds, load_training
from modelatlas.strategies.finetune.leftovers import Interrupted, clean_leftovers
from modelatlas.strategies.finetune.loop import Step
from modelatlas.strategies.finetune.outcome import (
    DataCheck,
    Duplicate,
    FinetuneOutcome,
    InterruptedFinetune,
    check_data,
    outcome,
)
from modelatlas.strategies.finetune.train import FineTuneResult, find_existing, finetune, make_params, prepare

__all__ = [
    "DataCheck",
    "Duplicate",
    "Example",
    "FineTuneResult",
    "FinetuneOutcome",
    "Interrupted",
    "InterruptedFinetune",
    "Step",
    "TrainingSet",
    "check_data",
    "clean_leftovers",
    "estimate_seconds",
    "find_existing",
    "finetune",
    "load_training",
    "make_params",
    "outcome",
    "prepare",
]
