"""`modelatlas run` on a speech model and `ma.transcribe` (issue 13 item 5), with the real bundled
Whisper base on espeak-ng speech; and the clear exit 2 of each wrong pairing of model and input."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

import modelatlas as ma
from modelatlas.cli.main import app
from tests.conftest import needs
from tests.test_backend_whisper import WER_BOUND, normal, wav_seconds

WHISPER = "local/whisper-base"
SMOL = "local/smollm2-135m-instruct"
cli = CliRunner()
pytestmark = needs("faster_whisper")


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return jiwer.wer(normal(reference), normal(hypothesis))


@pytest.fixture(scope="module")
def spoken(speech_dir, whisper_path):
    """The first test sentence (its WAV and text); the bundled model assembled beforehand."""
    return speech_dir[0]


def test_run_prints_the_transcript(spoken):
    wav, text = spoken
    result = cli.invoke(app, ["run", WHISPER, str(wav)])
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip()
    assert wer(text, printed) < WER_BOUND
    assert "real-time factor" in result.stderr and "s of audio" in result.stderr


def test_run_json_has_text_language_duration_segments_and_speed(spoken):
    wav, text = spoken
    result = cli.invoke(app, ["run", WHISPER, str(wav), "--json", "--language", "en", "--word-timestamps"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["model"] == WHISPER and out["language"] == "en"
    assert wer(text, out["text"]) < WER_BOUND
    assert out["duration_s"] == pytest.approx(wav_seconds(wav), abs=0.01)
    assert out["usage"]["audio_seconds"] == out["duration_s"]
    assert out["segments"] and all(s["start"] <= s["end"] for s in out["segments"])
    words = [w for s in out["segments"] for w in s["words"]]
    assert normal(" ".join(w["word"] for w in words)) == normal(out["text"])
    assert out["latency_s"] > 0
    assert out["real_time_factor"] == pytest.approx(out["latency_s"] / out["duration_s"], rel=1e-3)
    assert out["cost_usd"] == 0.0


def test_run_reads_audio_bytes_from_standard_input(spoken):
    wav, _ = spoken
    from_path = ma.transcribe(WHISPER, wav)
    result = cli.invoke(app, ["run", WHISPER, "-"], input=wav.read_bytes())
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == from_path.text  # the Python facade and the CLI agree


def test_the_facade_refuses_to_block_a_running_loop_and_offers_the_async_call(spoken):
    async def inside():
        with pytest.raises(ma.EventLoopRunningError, match="atranscribe"):
            ma.transcribe(WHISPER, spoken[0])

    asyncio.run(inside())
    assert "transcribe" in ma.__all__ and "atranscribe" in dir(ma)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["run", WHISPER, "no-such-file.wav"], "The audio file no-such-file.wav does not exist"),
        (["run", WHISPER, "What is said here?"], "it needs an audio file, not a text prompt"),
        (["run", WHISPER, "-"], "Standard input is empty"),
        (["run", SMOL, "hi", "--language", "en"], "--language and --word-timestamps are for speech models"),
    ],
)
def test_wrong_input_for_the_model_exits_2_saying_why(args, said):
    result = cli.invoke(app, args, input=b"")
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())


def test_an_audio_file_for_a_text_model_names_what_it_takes(spoken):
    result = cli.invoke(app, ["run", SMOL, str(spoken[0])])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"{SMOL} takes text, not audio" in said and "local/whisper-base" in said
