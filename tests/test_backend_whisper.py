"""The faster-whisper backend (issue 13 item 4) on the real bundled Whisper base and real speech:
the test sentences spoken by espeak-ng (tests/speech.py), one model loaded for the session.

The figures are checked against references on the same inputs: the WER by jiwer, the text by
faster-whisper's own WhisperModel called directly, the duration by the WAV header (``wave``), the
identity's weights hash by hashlib. The WER bound (0.30) is about twice what was measured (0.16
at 130 words a minute).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import sys
import wave
from pathlib import Path

import pytest

from modelatlas.backends.declared import facts
from modelatlas.backends.whisper import FasterWhisperBackend
from modelatlas.errors import ConfigError, InvalidRequestError, MissingExtraError, ModelFileError
from modelatlas.loading import load_model
from modelatlas.records import ModelRecord
from tests.conftest import needs, run

pytestmark = needs("faster_whisper")
WER_BOUND = 0.30


def normal(text: str) -> str:
    """Lower case, punctuation gone, single spaces: how the WER here compares words."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


def record_of(location: str, **options) -> ModelRecord:
    return ModelRecord(
        id="local/whisper-base", mode="transcription", backend="whisper", location=location, options=options
    )


@pytest.fixture(scope="session")
def whisper(whisper_path):
    """One loaded Whisper base for every test here (loading takes about a second)."""
    model = load_model(record_of(whisper_path))
    run(model.load())
    yield model
    run(model.aclose())


@pytest.fixture(scope="session")
def heard(whisper, speech_dir):
    """Each test sentence's transcript, made once: [(transcript, wav, text), ...]."""
    return [(run(whisper.transcribe(wav)), wav, text) for wav, text in speech_dir]


def test_the_spoken_sentences_are_transcribed_within_the_wer_bound(heard):
    import jiwer

    references = [normal(text) for _, _, text in heard]
    hypotheses = [normal(t.text) for t, _, _ in heard]
    wer = jiwer.wer(references, hypotheses)
    print(f"\nWER over {len(heard)} sentences: {wer:.3f}", file=sys.stderr)
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        print(f"  {reference!r} -> {hypothesis!r}", file=sys.stderr)
    assert wer < WER_BOUND


def test_a_transcript_has_language_duration_segments_and_timing(heard):
    for transcript, wav, _ in heard:
        assert transcript.language == "en" and transcript.language_probability > 0.5
        assert transcript.duration_s == pytest.approx(wav_seconds(wav), abs=0.01)
        assert transcript.usage.audio_seconds == transcript.duration_s
        assert transcript.segments, "no segment"
        previous_end = 0.0
        for segment in transcript.segments:
            assert previous_end - 1e-6 <= segment.start <= segment.end <= transcript.duration_s + 0.5
            previous_end = segment.end
        assert [s.id for s in transcript.segments] == list(range(len(transcript.segments)))
        assert transcript.text == "".join(s.text for s in transcript.segments).strip()
        assert transcript.timing.latency_s > 0 and transcript.real_time_factor > 0
        assert transcript.usage.cost_usd == 0.0  # local, and the record has no price
    factors = [t.real_time_factor for t, _, _ in heard]
    print(f"\nreal-time factor per sentence: {[round(f, 2) for f in factors]}", file=sys.stderr)


def test_the_text_is_faster_whispers_own_on_the_same_audio(whisper, heard, whisper_path):
    """The reference: faster-whisper's WhisperModel with the backend's settings, called directly."""
    from faster_whisper import WhisperModel

    options = whisper.backend.options
    direct = WhisperModel(whisper_path, device="cpu", compute_type="int8", cpu_threads=options.cpu_threads)
    transcript, wav, _ = heard[0]
    segments, info = direct.transcribe(str(wav), beam_size=options.beam_size)
    assert transcript.text == "".join(s.text for s in segments).strip()
    assert (transcript.language, transcript.duration_s) == (info.language, info.duration)


def test_bytes_and_a_path_give_the_same_transcript(whisper, heard):
    transcript, wav, _ = heard[1]
    from_bytes = run(whisper.transcribe(wav.read_bytes()))
    assert from_bytes.text == transcript.text
    assert from_bytes.duration_s == transcript.duration_s


def test_word_timestamps_and_a_given_language(whisper, speech_dir):
    wav = speech_dir[2][0]
    transcript = run(whisper.transcribe(wav, language="en", word_timestamps=True))
    assert transcript.language == "en"
    words = transcript.words
    assert len(words) == len(transcript.text.split())
    assert normal(" ".join(w.word for w in words)) == normal(transcript.text)
    for before, after in itertools.pairwise(words):
        assert before.start <= before.end <= after.start + 1e-6
    assert all(0 <= w.probability <= 1 for w in words)


def test_audio_that_does_not_decode_is_the_callers_error(whisper, tmp_path):
    with pytest.raises(InvalidRequestError, match="Cannot decode the 27 audio bytes as audio") as bad:
        run(whisper.transcribe(b"this is text, not any sound"))
    assert "WAV, MP3" in bad.value.hint
    missing = tmp_path / "gone.wav"
    with pytest.raises(InvalidRequestError, match=r"gone\.wav: there is no such file"):
        run(whisper.transcribe(missing))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InvalidRequestError, match=r"empty\.wav"):
        run(whisper.transcribe(empty))


def test_an_unknown_language_is_refused_by_name(whisper, speech_dir):
    with pytest.raises(InvalidRequestError, match="does not know the language 'klingon'") as refused:
        run(whisper.transcribe(speech_dir[0][0], language="klingon"))
    assert refused.value.param == "language"


def test_facts_identity_and_options(whisper_path):
    record = record_of(whisper_path)
    declared = facts(record)
    weights = Path(whisper_path) / "model.bin"
    assert declared.capabilities == {"transcription"} and declared.accepts == {"audio"}
    assert declared.outputs == {"text"} and declared.local and not declared.hosted
    assert declared.memory_bytes == weights.stat().st_size and declared.file_format == "ctranslate2"
    backend = FasterWhisperBackend(record.id, whisper_path, FasterWhisperBackend.parse_options({}))
    assert backend.options.compute_type == "int8" and backend.options.beam_size == 5
    assert hashlib.sha256(weights.read_bytes()).hexdigest() in backend.identity()
    options = FasterWhisperBackend.parse_options
    faster = FasterWhisperBackend(record.id, whisper_path, options({"cpu_threads": 1}))
    wider = FasterWhisperBackend(record.id, whisper_path, options({"beam_size": 1}))
    assert faster.identity() == backend.identity() != wider.identity()
    with pytest.raises(ConfigError, match="beam_szie"):
        FasterWhisperBackend.parse_options({"beam_szie": 2})


def test_the_bundled_record_runs_on_this_backend():
    from modelatlas.catalog.resolve import resolve

    record = resolve("local/whisper-base")
    assert (record.backend, record.mode) == ("whisper", "transcription")
    assert facts(record).capabilities == {"transcription"}


def test_a_location_that_is_no_model_folder_fails_before_any_download(tmp_path, whisper_path):
    not_a_folder = tmp_path / "model.bin"
    not_a_folder.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="is not a folder"):
        load_model(record_of(str(not_a_folder))).backend.load()
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model.bin").symlink_to(Path(whisper_path) / "model.bin")
    with pytest.raises(ModelFileError, match=r"lacks config\.json, tokenizer\.json, vocabulary\.json"):
        load_model(record_of(str(partial))).backend.load()
    with pytest.raises(ConfigError, match="needs the folder"):
        FasterWhisperBackend("x/y", None, FasterWhisperBackend.parse_options({}))


def test_a_text_prompt_is_refused_with_what_to_do(whisper):
    with pytest.raises(ConfigError, match="transcribes audio, it does not write text"):
        run(whisper.backend.generate("hello", None))


def test_without_faster_whisper_the_error_names_the_extra(whisper_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # the package is not importable
    backend = FasterWhisperBackend("local/whisper-base", whisper_path, FasterWhisperBackend.parse_options({}))
    with pytest.raises(MissingExtraError) as missing:
        backend.load()
    assert "pip install 'modelatlas[speech]'" in missing.value.hint


def test_two_at_once_give_what_each_gives_alone_and_a_priced_record_costs_its_minutes(
    whisper, heard, whisper_path
):
    """Two transcriptions in flight on one loaded model; the second through a record priced per
    minute of audio (OpenAI's whisper-1 rate), which prices the local model too."""
    from modelatlas.backends.model import Model
    from modelatlas.records import Price

    priced = Model(
        record_of(whisper_path).model_copy(update={"price": Price(audio_per_minute=0.006)}), whisper.backend
    )

    async def both():
        return await asyncio.gather(whisper.transcribe(heard[3][1]), priced.transcribe(heard[0][1]))

    plain, paid = run(both())
    assert (plain.text, paid.text) == (heard[3][0].text, heard[0][0].text)
    assert plain.usage.cost_usd == 0.0
    assert paid.usage.cost_usd == pytest.approx(0.006 * paid.duration_s / 60, rel=1e-9)
