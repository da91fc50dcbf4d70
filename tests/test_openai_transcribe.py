"""Hosted speech models through the openai backend (issue 13 item 5): ``audio.transcriptions``
with the real openai SDK, against `modelatlas serve` on 127.0.0.1 serving the bundled Whisper
base (verbose_json and json answers, word timestamps, the cost by a per-minute price), and
against OpenAI itself when OPENAI_API_KEY is set. The catalog's OpenAI speech records too.

The reference for the served text is the same model run in this process (tests/test_backend_whisper's
session transcripts): the server and the client must not change a word of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelatlas.backends.declared import facts
from modelatlas.backends.openai_audio import response_format
from modelatlas.errors import InvalidRequestError
from modelatlas.loading import load_model
from modelatlas.records import ModelRecord, Price
from tests.conftest import needs, run
from tests.test_backend_whisper import WER_BOUND, heard, normal, wav_seconds, whisper  # noqa: F401

WHISPER = "local/whisper-base"
PER_MINUTE = 0.006  # USD, OpenAI's whisper-1 price, set on the client's record
KEY_ENV = "MODELATLAS_TEST_SERVE_KEY"
pytestmark = [needs("faster_whisper"), needs("fastapi")]


def served_record(url: str, **options) -> ModelRecord:
    """The served Whisper as a hosted record of the openai backend, priced per minute."""
    return ModelRecord(
        id="served/whisper-base",
        mode="transcription",
        backend="openai",
        price=Price(audio_per_minute=PER_MINUTE),
        options={"base_url": url, "model": WHISPER, "api_key_env": KEY_ENV, **options},
    )


@pytest.fixture
def serve_url(whisper_server):
    """The session's `modelatlas serve` of the bundled Whisper (conftest): its /v1 URL and a key."""
    return whisper_server


@pytest.fixture
def served(serve_url, monkeypatch):
    url, secret = serve_url
    monkeypatch.setenv(KEY_ENV, secret)
    return url


def test_verbose_json_through_serve_is_the_local_transcript_priced_per_minute(served, heard):  # noqa: F811
    transcript, wav, _ = heard[0]
    model = load_model(served_record(served))
    got = run(model.transcribe(wav, word_timestamps=True))
    run(model.aclose())
    assert got.text == transcript.text and got.language == "en"
    assert got.duration_s == pytest.approx(wav_seconds(wav), abs=0.05)
    assert [s.text.strip() for s in got.segments] == [s.text.strip() for s in transcript.segments]
    for segment in got.segments:  # with word timestamps a segment spans its words (not the local times)
        assert segment.words
        assert segment.start - 0.01 <= segment.words[0].start <= segment.words[-1].end <= segment.end + 0.01
    assert normal(" ".join(w.word for w in got.words)) == normal(got.text)
    assert got.usage.audio_seconds == got.duration_s
    assert got.usage.cost_usd == pytest.approx(PER_MINUTE * got.duration_s / 60, rel=1e-9)
    assert got.timing.latency_s > 0 and got.real_time_factor > 0


def test_json_through_serve_reads_the_duration_from_the_answer(served, heard):  # noqa: F811
    transcript, wav, _ = heard[1]
    model = load_model(served_record(served, transcript_format="json"))
    got = run(model.transcribe(wav.read_bytes()))
    run(model.aclose())
    assert got.text == transcript.text and got.segments == []
    assert got.duration_s == pytest.approx(wav_seconds(wav), abs=0.01)
    assert got.usage.cost_usd == pytest.approx(PER_MINUTE * got.duration_s / 60, rel=1e-9)
    with pytest.raises(InvalidRequestError, match="gives no word timestamps") as refused:
        run(load_model(served_record(served, transcript_format="json")).transcribe(wav, word_timestamps=True))
    assert refused.value.param == "word_timestamps"


def test_a_wrong_key_is_a_clear_error(serve_url, monkeypatch, speech_dir):
    from modelatlas.errors import BackendError

    monkeypatch.setenv(KEY_ENV, "sk-not-a-key-of-this-server")
    with pytest.raises(BackendError, match="refused the API key") as refused:
        run(load_model(served_record(serve_url[0])).transcribe(speech_dir[0][0]))
    assert "sk-not-a-key" not in str(refused.value)


def test_the_catalog_has_openais_speech_models_priced_per_minute():
    from modelatlas.catalog.catalog import load_catalog

    catalog = load_catalog(scan=False)
    prices = {
        "openai/whisper-1": 0.006,
        "openai/gpt-4o-transcribe": 0.006,
        "openai/gpt-4o-mini-transcribe": 0.003,
    }
    for model_id, per_minute in prices.items():
        record = catalog.get(model_id)
        assert (record.mode, record.backend, record.tasks) == (
            "transcription",
            "openai",
            ["speech-recognition"],
        )
        assert record.price.audio_per_minute == per_minute
        assert record.options == {"model": model_id.split("/")[1], "api_key_env": "OPENAI_API_KEY"}
        declared = facts(record)
        assert (
            declared.capabilities == {"transcription"} and declared.accepts == {"audio"} and declared.hosted
        )
    groq = catalog.get("groq/whisper-large-v3")  # models.dev's speech-only models: mode transcription
    assert groq.mode == "transcription" and facts(groq).can("transcription")
    assert not facts(catalog.get("openai/gpt-4o")).can("transcription")  # a chat model does not claim it


def test_the_answer_format_follows_the_model():
    assert response_format("whisper-1", None) == "verbose_json"
    assert response_format("gpt-4o-transcribe", None) == "json"
    assert response_format("gpt-4o-mini-transcribe", None) == "json"
    assert response_format("gpt-4o-mini-transcribe", "verbose_json") == "verbose_json"


@pytest.mark.skipif(
    not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY (calls OpenAI, costs money)"
)
@pytest.mark.parametrize("model_id", ["openai/whisper-1", "openai/gpt-4o-mini-transcribe"])
def test_openai_transcribes_the_sentences(model_id, speech_dir):
    import jiwer

    model = load_model(model_id)
    got = [run(model.transcribe(wav, language="en")) for wav, _ in speech_dir[:2]]
    run(model.aclose())
    references = [normal(text) for _, text in speech_dir[:2]]
    assert jiwer.wer(references, [normal(t.text) for t in got]) < WER_BOUND
    for transcript, (wav, _) in zip(got, speech_dir, strict=False):
        assert transcript.duration_s == pytest.approx(wav_seconds(Path(wav)), abs=0.1)
        price = model.record.price.audio_per_minute
        assert transcript.usage.cost_usd == pytest.approx(price * transcript.duration_s / 60, rel=1e-6)


def test_a_json_answer_without_a_duration_takes_it_from_the_audio(speech_dir):
    """gpt-4o transcribe models give no duration: it is read from the file, as wave reads it."""
    from modelatlas.audio_length import audio_seconds

    wav = speech_dir[0][0]
    data = wav.read_bytes()
    assert audio_seconds(data) == pytest.approx(wav_seconds(wav), abs=1e-9)
    assert audio_seconds(b"not sound") is None
