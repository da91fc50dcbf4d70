"""Hosted speech-recognition models that models.dev does not list, with their per-minute prices.

models.dev gives token prices only, and lists none of OpenAI's own transcription models, so the
catalog adds them here: each runs through the openai backend (``audio.transcriptions``) and is
priced per minute of audio (:attr:`Price.audio_per_minute`). A record of the same id from the
snapshot keeps its facts; it gets the mode, the task and the per-minute price from here.

Source of the prices: OpenAI's pricing page, https://platform.openai.com/docs/pricing
(Transcription and speech generation), as of 2025: whisper-1 $0.006 a minute,
gpt-4o-transcribe $0.006 a minute (estimated cost), gpt-4o-mini-transcribe $0.003 a minute.
"""

from __future__ import annotations

from modelatlas.catalog.records import Link, Modalities, ModelRecord, Price

PRICE_SOURCE = "https://platform.openai.com/docs/pricing"
PRICE_DATE = "2025"

# id -> (name, USD per minute of audio, release date)
OPENAI_SPEECH: dict[str, tuple[str, float, str]] = {
    "openai/whisper-1": ("Whisper (whisper-1)", 0.006, "2023-03-01"),
    "openai/gpt-4o-transcribe": ("GPT-4o Transcribe", 0.006, "2025-03-20"),
    "openai/gpt-4o-mini-transcribe": ("GPT-4o mini Transcribe", 0.003, "2025-03-20"),
}


def speech_records() -> list[ModelRecord]:
    """OpenAI's transcription models as hosted records of the openai backend."""
    return [_record(model_id, *facts) for model_id, facts in OPENAI_SPEECH.items()]


def _record(model_id: str, name: str, per_minute: float, date: str) -> ModelRecord:
    return ModelRecord(
        id=model_id,
        name=name,
        provider="openai",
        family="whisper" if "whisper" in model_id else "gpt-4o",
        mode="transcription",
        tasks=["speech-recognition"],
        modalities=Modalities(input=["audio"], output=["text"]),
        open_weights=False,
        hosting="hosted",
        price=Price(audio_per_minute=per_minute),
        release_date=date,
        links=[
            Link(
                label="OpenAI speech to text guide",
                url="https://platform.openai.com/docs/guides/speech-to-text",
            ),
            Link(label=f"OpenAI pricing (as of {PRICE_DATE})", url=PRICE_SOURCE),
        ],
        source="modelatlas (OpenAI pricing page)",
        backend="openai",
        options={"model": model_id.split("/", 1)[1], "api_key_env": "OPENAI_API_KEY"},
    )


def hosted_speech(known: dict[str, ModelRecord]) -> list[ModelRecord]:
    """The speech records to put in the catalog over ``known`` (the snapshot's, by id): a
    record already known keeps its facts and takes the mode, the task and the per-minute price."""
    found = []
    for record in speech_records():
        had = known.get(record.id)
        if had is not None:
            per_minute = {"audio_per_minute": OPENAI_SPEECH[record.id][1]}
            price = (had.price or Price()).model_copy(update=per_minute)
            update = {"mode": "transcription", "tasks": ["speech-recognition"], "price": price}
            record = had.model_copy(update=update)
        found.append(record)
    return found
