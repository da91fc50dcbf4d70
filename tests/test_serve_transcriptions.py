"""POST /v1/audio/transcriptions of `modelatlas serve`, called with the real openai SDK.

One server for the module (a subprocess on a free 127.0.0.1 port, keys on) serves the bundled
Whisper base and SmolLM2 (the model that does not transcribe). The audio is espeak-ng speech of
tests.speech's five sentences, one sentence per response format, so that every format is
checked and the five transcripts together give the WER (lowercased, punctuation removed; bound
0.30; measured 0.065 through the server). Durations are checked against Python's ``wave`` module, the language
table against faster-whisper's and transformers' own tables for Whisper.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import run
from tests.servers import modelatlas_serve, new_key

openai = pytest.importorskip("openai")

WHISPER = "local/whisper-base"
CHAT = "local/smollm2-135m-instruct"
PER_MINUTE = 0.006  # USD per minute of audio, OpenAI's whisper-1 price, set for the local model
MAX_AUDIO_MB = 1.0
WER_BOUND = 0.30
SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"
VTT_TIME = r"(\d{2}):(\d{2}):(\d{2})\.(\d{3})"


@dataclass
class Served:
    url: str
    home: Path
    secret: str
    log: Path

    def client(self, secret: str | None = None):
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=secret or self.secret, max_retries=0)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODELATLAS_HOME": str(home), "COLUMNS": "200"}  # a table on one line
    env.pop("MODELATLAS_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "modelatlas", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def seconds_of(path: Path) -> float:
    """The reference duration: frames over rate, as Python's wave module reads the file."""
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def words_of(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


@pytest.fixture(scope="module")
def served(tmp_path_factory, whisper_path) -> Served:
    folder = tmp_path_factory.mktemp("serve-audio")
    home = folder / "home"
    prices = folder / "prices.yaml"
    prices.write_text(f"{WHISPER}: {{audio_per_minute: {PER_MINUTE}}}\n")
    secret = new_key(home, "listener")
    args = ["--model", WHISPER, "--model", CHAT, "--prices", str(prices), "--max-audio-mb", str(MAX_AUDIO_MB)]
    with modelatlas_serve(folder, args) as base:
        yield Served(base, home, secret, folder / "server.log")


@pytest.fixture(scope="module")
def answers(served, speech_dir) -> dict:
    """One sentence per format, through client.audio.transcriptions.create."""
    client = served.client()
    formats = [
        ("json", {}),
        ("text", {}),
        ("verbose_json", {"timestamp_granularities": ["word", "segment"]}),
        ("srt", {}),
        ("vtt", {"language": "en", "temperature": 0.0}),
    ]
    out = {}
    for (fmt, extra), (wav, text) in zip(formats, speech_dir, strict=True):
        with open(wav, "rb") as audio:  # a file object, as the SDK's examples do
            got = client.audio.transcriptions.create(model=WHISPER, file=audio, response_format=fmt, **extra)
        out[fmt] = (got, wav, text)
    return out


def test_json_is_the_text_and_the_audio_seconds(answers):
    got, wav, _ = answers["json"]
    assert isinstance(got.text, str) and got.text.strip()
    assert got.usage.type == "duration"
    assert got.usage.seconds == pytest.approx(seconds_of(wav), abs=0.002)


def test_text_is_a_plain_body(answers):
    got, _, _ = answers["text"]
    assert isinstance(got, str) and got.endswith("\n") and not got.lstrip().startswith("{")
    assert got.strip()


def test_verbose_json_has_language_duration_segments_and_words(answers):
    got, wav, _ = answers["verbose_json"]
    duration = seconds_of(wav)
    assert got.task == "transcribe"
    assert got.language == "english"
    assert got.duration == pytest.approx(duration, abs=0.05)
    assert got.usage.seconds == pytest.approx(duration, abs=0.05)
    assert got.segments, "no segments"
    for i, segment in enumerate(got.segments):
        assert segment.id == i
        assert 0 <= segment.start < segment.end <= duration + 0.5
        assert segment.tokens and segment.text.strip()
        assert segment.avg_logprob < 0 and 0 <= segment.no_speech_prob <= 1
        assert segment.compression_ratio > 0 and segment.temperature >= 0
    assert " ".join(s.text.strip() for s in got.segments) == got.text.strip()
    words = got.words
    assert words and [w.word for w in words] == got.text.split()
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.start <= w.end <= duration + 0.5 for w in words)


def _cue_times(body: str, pattern: str) -> list[tuple[float, float]]:
    stamp = re.compile(rf"^{pattern} --> {pattern}$", re.M)
    times = []
    for m in stamp.finditer(body):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, m.groups())
        times.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000))
    return times


def test_srt_cues_are_numbered_and_timed(answers):
    body, wav, _ = answers["srt"]
    assert isinstance(body, str)
    cues = [c for c in body.split("\n\n") if c.strip()]
    assert cues and [c.splitlines()[0] for c in cues] == [str(n) for n in range(1, len(cues) + 1)]
    times = _cue_times(body, SRT_TIME)
    assert len(times) == len(cues)
    assert all(0 <= start < end <= seconds_of(wav) + 0.5 for start, end in times)
    assert [s for s, _ in times] == sorted(s for s, _ in times)


def test_vtt_has_its_header_and_timed_cues(answers):
    body, wav, _ = answers["vtt"]
    assert body.startswith("WEBVTT\n\n")
    times = _cue_times(body, VTT_TIME)
    assert times and all(0 <= start < end <= seconds_of(wav) + 0.5 for start, end in times)


def cue_texts(body: str) -> str:
    """The words of an SRT or WebVTT body: its cues' text lines (no header, numbers or times)."""
    lines = [line for line in body.splitlines() if line.strip() and line != "WEBVTT"]
    return " ".join(line for line in lines if "-->" not in line and not line.isdigit())


def test_the_five_transcripts_have_a_low_word_error_rate(answers):
    jiwer = pytest.importorskip("jiwer")
    texts = {
        "json": answers["json"][0].text,
        "text": answers["text"][0],
        "verbose_json": answers["verbose_json"][0].text,
        "srt": cue_texts(answers["srt"][0]),
        "vtt": cue_texts(answers["vtt"][0]),
    }
    references = [words_of(answers[f][2]) for f in texts]
    hypotheses = [words_of(texts[f]) for f in texts]
    rate = jiwer.wer(references, hypotheses)
    print(f"\nWER of {WHISPER} served, over the five sentences: {rate:.3f}")
    assert rate < WER_BOUND, list(zip(references, hypotheses, strict=True))


def _error(call) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value


def test_bad_requests_get_openai_errors_naming_the_problem(served, speech_dir):
    wav = speech_dir[0][0]
    client = served.client()

    def create(**fields):
        fields.setdefault("model", WHISPER)
        fields.setdefault("file", wav)  # a path: the SDK sends its name and bytes
        return client.audio.transcriptions.create(**fields)

    cases = [
        ({"model": CHAT}, 400, "model", "does not transcribe audio"),
        ({"response_format": "diarized_json"}, 400, "response_format", "diarized_json"),
        ({"response_format": "yaml"}, 400, "response_format", "yaml"),
        ({"stream": True}, 400, "stream", "Streaming transcription is not supported"),
        ({"language": "klingon"}, 400, "language", "klingon"),
        ({"timestamp_granularities": ["word"]}, 400, "timestamp_granularities[]", "verbose_json"),
        ({"temperature": 1.5}, 400, "temperature", "at most 1"),
        ({"file": ("empty.wav", b"", "audio/wav")}, 400, "file", "is empty"),
        ({"file": ("noise.wav", os.urandom(4000), "audio/wav")}, 400, "file", "not audio"),
        ({"file": ("big.wav", _silence(MAX_AUDIO_MB * 1.2), "audio/wav")}, 413, None, "--max-audio-mb"),
        ({"model": "local/nope"}, 404, None, "local/nope"),
    ]
    for fields, status, param, words in cases:
        error = _error(lambda fields=fields: create(**fields))
        assert error.status_code == status, (fields.keys(), error)
        assert error.body["param"] == param and words in error.body["message"], error.body
        assert set(error.body) == {"message", "type", "param", "code"}


def _silence(megabytes: float) -> bytes:
    """A WAV of silence of about ``megabytes`` (16 kHz mono 16-bit)."""
    frames = int(megabytes * 2**20) // 2
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\0\0" * frames)
    return buffer.getvalue()


def test_no_key_or_a_wrong_one_is_401(served, speech_dir):
    wav = speech_dir[0][0]
    error = _error(lambda: served.client("ma-wrong").audio.transcriptions.create(model=WHISPER, file=wav))
    assert isinstance(error, openai.AuthenticationError)
    files = {"file": ("a.wav", wav.read_bytes(), "audio/wav")}
    bare = httpx.post(f"{served.url}/v1/audio/transcriptions", data={"model": WHISPER}, files=files)
    assert bare.status_code == 401 and bare.json()["error"]["type"] == "authentication_error"


def test_chat_with_the_speech_model_is_a_clear_400(served):
    error = _error(
        lambda: served.client().chat.completions.create(
            model=WHISPER, messages=[{"role": "user", "content": "hello"}]
        )
    )
    assert error.status_code == 400 and error.body["param"] == "model"
    assert (
        "speech-recognition model" in error.body["message"]
        and "/v1/audio/transcriptions" in error.body["message"]
    )


def test_the_requests_are_metered_with_their_audio_seconds_and_priced_per_minute(served, speech_dir):
    wav = speech_dir[1][0]
    secret = new_key(served.home, "metered")
    with wav.open("rb") as audio:
        got = served.client(secret).audio.transcriptions.create(model=WHISPER, file=audio)
    with contextlib.suppress(openai.APIStatusError):  # a metered 400: admitted, then refused
        served.client(secret).audio.transcriptions.create(model=CHAT, file=wav)
    seconds = seconds_of(wav)
    report = httpx.get(
        f"{served.url}/v1/usage?by=model", headers={"Authorization": f"Bearer {secret}"}
    ).json()
    rows = {row["group"]: row for row in report["data"]}  # /v1/usage flushes the meter first
    assert rows[WHISPER]["requests"] == 1 and rows[CHAT]["requests"] == 1
    assert rows[WHISPER]["audio_seconds"] == pytest.approx(got.usage.seconds, abs=0.001)
    assert rows[WHISPER]["audio_seconds"] == pytest.approx(seconds, abs=0.002)
    assert rows[WHISPER]["cost_usd"] == pytest.approx(PER_MINUTE * seconds / 60, rel=1e-3)
    assert rows[CHAT]["audio_seconds"] == 0 and rows[CHAT]["cost_usd"] == 0

    done = cli(served.home, "usage", "--key", "metered", "--by", "model", "--json")
    assert done.returncode == 0, done.stderr
    by_model = {row["model"]: row for row in json.loads(done.stdout)}
    assert by_model[WHISPER]["audio_seconds"] == pytest.approx(seconds, abs=0.002)
    assert "audio_seconds" not in by_model[CHAT]  # left out where nothing was transcribed
    table = cli(served.home, "usage", "--key", "metered", "--by", "model")
    assert "audio seconds" in table.stdout and f"{seconds:.1f}" in table.stdout

    log = served.log.read_text(errors="replace")
    line = rf'"POST /v1/audio/transcriptions" 200 model={WHISPER} key=\S+ tokens='
    assert re.search(line, log), log[-2000:]
    metrics = httpx.get(f"{served.url}/metrics").text
    assert f'endpoint="/v1/audio/transcriptions",model="{WHISPER}",status="200"' in metrics


def test_a_key_limits_count_transcriptions_and_the_budget_their_minutes(served, speech_dir):
    wav = speech_dir[2][0]
    one_a_minute = served.client(new_key(served.home, "slow", rpm=1))
    _error(lambda: one_a_minute.audio.transcriptions.create(model=CHAT, file=wav))
    error = _error(lambda: one_a_minute.audio.transcriptions.create(model=CHAT, file=wav))
    assert error.status_code == 429 and "1 requests" in error.body["message"]

    cost = PER_MINUTE * seconds_of(wav) / 60
    tight = served.client(new_key(served.home, "tight", budget_usd=round(cost / 2, 8)))
    with wav.open("rb") as audio:  # nothing spent: admitted, and it goes over by itself
        tight.audio.transcriptions.create(model=WHISPER, file=audio)
    error = _error(lambda: tight.audio.transcriptions.create(model=WHISPER, file=wav))
    assert error.status_code == 429 and error.body["code"] == "insufficient_quota"


def test_the_openapi_document_describes_the_multipart_upload(served):
    document = httpx.get(f"{served.url}/openapi.json").json()
    operation = document["paths"]["/v1/audio/transcriptions"]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert {"model", "file"} <= set(schema["required"])
    assert {"language", "prompt", "response_format", "temperature", "timestamp_granularities[]"} <= set(
        schema["properties"]
    )
    assert {"application/json", "text/plain", "text/vtt", "application/x-subrip"} <= set(
        operation["responses"]["200"]["content"]
    )


# -- without a server: the formats, the header reader, the language table, the reservation --


def _transcript():
    from modelatlas.transcripts import Segment, Transcript, Word
    from modelatlas.types import Usage

    words = [Word(word=" Hello", start=0.0, end=0.4), Word(word=" there.", start=0.5, end=1.0)]
    segments = [
        Segment(id=0, start=0.0, end=2.5, text=" Hello there.", tokens=[1, 2], avg_logprob=-0.2, words=words),
        Segment(id=1, start=3661.0206, end=3662.9996, text=" Late.", tokens=[3]),
    ]
    return Transcript(
        text="Hello there. Late.",
        model="m",
        language="en",
        duration_s=3663.0,
        segments=segments,
        usage=Usage(audio_seconds=3663.0),
    )


def test_srt_and_vtt_bodies_are_exactly_the_subtitle_formats():
    from modelatlas.serve.transcript_formats import srt, vtt

    transcript = _transcript()
    assert srt(transcript) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n01:01:01,021 --> 01:01:03,000\nLate.\n\n"
    )
    assert vtt(transcript) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n01:01:01.021 --> 01:01:03.000\nLate.\n\n"
    )


def test_verbose_json_holds_what_was_asked_for():
    from modelatlas.serve.transcript_formats import verbose

    transcript = _transcript()
    full = verbose(transcript, ["word", "segment"]).model_dump()
    assert full["language"] == "english" and full["duration"] == 3663.0 and full["task"] == "transcribe"
    assert [w["word"] for w in full["words"]] == ["Hello", "there."]
    assert full["segments"][1]["seek"] == 366102 and full["usage"] == {"type": "duration", "seconds": 3663.0}
    assert verbose(transcript, ["word"]).segments is None  # only words, as OpenAI answers
    assert verbose(transcript, []).words is None


def test_the_wav_header_gives_the_duration_python_wave_reads(speech_dir):
    from modelatlas.audio_length import wav_seconds
    from modelatlas.serve.transcriptions import probe

    for wav, _ in speech_dir:
        assert wav_seconds(wav.read_bytes()) == pytest.approx(seconds_of(wav), abs=1e-9)
    silence = _silence(0.1)
    assert wav_seconds(silence) == pytest.approx(seconds_of_bytes(silence), abs=1e-9)
    assert wav_seconds(b"ID3" + bytes(100)) is None
    from modelatlas.errors import InvalidRequestError

    pytest.importorskip("av")
    with pytest.raises(InvalidRequestError) as caught:
        probe(os.urandom(3000))
    assert caught.value.param == "file"


def seconds_of_bytes(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def test_the_language_table_is_whispers():
    from modelatlas.serve.languages import code_of, name_of
    from modelatlas.speech_languages import LANGUAGES as NAMES

    tokenizer = pytest.importorskip("faster_whisper.tokenizer")
    assert set(NAMES) == set(tokenizer._LANGUAGE_CODES)
    whisper = pytest.importorskip("transformers.models.whisper.tokenization_whisper")
    assert NAMES == whisper.LANGUAGES
    assert name_of("en") == "english" and code_of("English") == "en" and code_of("FR") == "fr"


def test_a_transcription_reserves_its_minutes_at_the_price_per_minute():
    from modelatlas.catalog.records import ModelRecord, Price
    from modelatlas.serve.limits import Worst
    from modelatlas.serve.reserve import worst_case
    from modelatlas.serve.transcriptions import TranscriptionJob
    from modelatlas.store.keys import create_key

    key, _ = create_key("budgeted", budget_usd=1.0)
    record = ModelRecord(
        id="test/ears", backend="echo", mode="transcription", price=Price(audio_per_minute=0.006)
    )
    job = TranscriptionJob(model=record.id, audio=b"", estimated_seconds=90.0)
    assert run(worst_case(None, key, record, job)) == Worst(tokens=0, cost_usd=pytest.approx(0.009))
    unknown = TranscriptionJob(model=record.id, audio=b"", estimated_seconds=None)  # charged at the end
    assert run(worst_case(None, key, record, unknown)) == Worst(tokens=0, cost_usd=0.0)
