"""Speech in an evaluation: which arms transcribe, and what a plan with audio must not ask.

A speech-recognition model (its facts say it transcribes and generates no text) answers an item
with ``Model.transcribe`` of the item's audio; prompting strategies mean nothing to it, so a plan
that gives it one is refused before anything runs. A chat model answers an audio item by hearing
the sound in the user's message, so a plan with audio is refused for a model that takes none,
naming every such model (rather than failing each item with the provider's error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelatlas.errors import ConfigError, ModelAtlasError

if TYPE_CHECKING:
    from modelatlas.backends.declared import BackendFacts
    from modelatlas.evals.plan import Plan
    from modelatlas.records import ModelRecord

ZERO_SHOT = "zero-shot"


def transcribes(facts: BackendFacts) -> bool:
    """Whether a model is a speech recogniser: it transcribes and does not generate text."""
    return facts.can("transcription") and not facts.can("generate")


def check_speech(plan: Plan) -> None:
    """Refuse strategies for speech models, and audio for models that cannot take it."""
    has_audio = any(item.audio is not None for item in plan.dataset.items)
    prompted = any(s.name != ZERO_SHOT for _, s in plan.arms)
    if not (has_audio or prompted):
        return  # nothing to check: no model is looked up
    records = {m: _record(m) for m in plan.models}
    for model, strategy in plan.arms:
        record = records[model]
        if strategy.name != ZERO_SHOT and record is not None and transcribes(_facts(record)):
            raise ConfigError(
                f"{model} transcribes speech: the strategy {strategy.name} does not apply to it.",
                hint="A speech model is sent the audio alone; drop --strategy for it (zero-shot).",
            )
    if has_audio:
        deaf = [m for m, record in records.items() if record is not None and not _hears(record)]
        if deaf:
            raise ConfigError(
                f"{plan.dataset.path} holds audio, and {_listed(deaf)} cannot take audio.",
                hint="Evaluate a speech-recognition model (e.g. local/whisper-base, "
                "`modelatlas catalog search --task speech-recognition`) or a chat model that takes audio.",
            )


def _hears(record: ModelRecord) -> bool:
    """Whether the model can be given an item's sound: it transcribes, or it chats and takes audio."""
    known = _facts(record)
    return transcribes(known) or ("audio" in known.accepts and record.mode != "completion")


def _record(model: str) -> ModelRecord | None:
    """The model's record, or None when it cannot be looked up now (the run reports that)."""
    from modelatlas.catalog.resolve import resolve

    try:
        return resolve(model)
    except ModelAtlasError:
        return None


def _facts(record: ModelRecord) -> BackendFacts:
    from modelatlas.backends.declared import facts

    return facts(record)


def _listed(models: list[str]) -> str:
    return models[0] if len(models) == 1 else f"{', '.join(models[:-1])} and {models[-1]}"
