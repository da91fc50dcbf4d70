"""The playground's audio mode: its API with the real bundled Whisper base on espeak-ng speech, its
refusals, the catalog's speech-recognition facet, and the page in a real browser (Chromium),
uploading a file and recording through Chromium's fake microphone fed with the same speech.

The studio runs as a subprocess (``studio`` fixture, tests/studio_browser.py), so each test that
transcribes loads Whisper base once in that process.
"""

from __future__ import annotations

import base64
import os
import re
import wave
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.studio.audio import MAX_AUDIO_BYTES
from tests.studio_browser import CHROMIUM, Watch, screenshot

WHISPER = "local/whisper-base"
API = "/api/playground/transcribe"


@pytest.fixture
def chat_model():
    """A quick text model registered in the test's home: it writes text, it cannot hear."""
    user.add(ModelRecord(id="test/echo", backend="echo", mode="chat"))
    return "test/echo"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def wav_seconds(path: Path) -> float:
    """The WAV's length by Python's wave module (the reference for duration_s)."""
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate by jiwer, on lower-case words without punctuation."""
    jiwer = pytest.importorskip("jiwer")

    def words(text: str) -> str:
        return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())

    return jiwer.wer(words(reference), words(hypothesis))


def check_transcript(result: dict, sentence: str, wav: Path) -> None:
    assert "error" not in result, result
    assert wer(sentence, result["text"]) < 0.30, result["text"]
    assert result["language"] == "en"
    assert result["duration_s"] == pytest.approx(wav_seconds(wav), abs=0.05)
    assert 0 < result["latency_s"] < 300
    assert result["real_time_factor"] == pytest.approx(result["latency_s"] / result["duration_s"], rel=1e-6)
    assert result["cost_usd"] == 0  # a local model, unpriced


# --- over HTTP ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_whisper_base_transcribes_the_audio_and_a_chat_model_says_it_cannot(
    studio, speech_dir, whisper_path, chat_model
):
    wav, sentence = speech_dir[0]
    body = {"models": [WHISPER, chat_model], "audio": b64(wav.read_bytes()), "filename": wav.name}
    response = httpx.post(studio + API, json=body, timeout=300)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["audio"] == {"bytes": wav.stat().st_size, "filename": wav.name}
    heard, refused = data["results"]
    assert heard["index"] == 0 and heard["model"] == WHISPER
    check_transcript(heard, sentence, wav)
    assert refused == {
        "index": 1,
        "model": chat_model,
        "error": f"{chat_model} cannot take audio: it is a chat model. "
        f"Pick a speech-recognition model, for example {WHISPER}.",
    }
    # A data: URL (what the page's FileReader sends) and a language given: the same model, loaded.
    wav, sentence = speech_dir[1]
    url = "data:audio/wav;base64," + b64(wav.read_bytes())
    again = httpx.post(studio + API, json={"models": [WHISPER], "audio": url, "language": "en"}, timeout=300)
    assert again.status_code == 200, again.text
    check_transcript(again.json()["results"][0], sentence, wav)


SERVED = "served/whisper-base"
PER_MINUTE = 0.006  # USD, OpenAI's whisper-1 price, set on the served model's record
KEY_ENV = "MODELATLAS_TEST_SERVE_KEY"


@pytest.fixture
def serve_url(whisper_server):
    """The session's `modelatlas serve` of the bundled Whisper (conftest): its /v1 URL and a key."""
    return whisper_server


@pytest.fixture
def hosted_whisper(serve_url, monkeypatch):
    """The served Whisper registered as a hosted model of the openai backend, priced per minute;
    its key in the environment the studio subprocess inherits."""
    url, secret = serve_url
    monkeypatch.setenv(KEY_ENV, secret)
    options = {"base_url": url, "model": WHISPER, "api_key_env": KEY_ENV}
    price = Price(audio_per_minute=PER_MINUTE)
    user.add(ModelRecord(id=SERVED, mode="transcription", backend="openai", price=price, options=options))
    return SERVED


@pytest.mark.slow
def test_a_local_and_a_hosted_speech_model_side_by_side(hosted_whisper, studio, speech_dir):
    wav, sentence = speech_dir[4]
    body = {"models": [WHISPER, hosted_whisper], "audio": b64(wav.read_bytes()), "language": "en"}
    response = httpx.post(studio + API, json=body, timeout=300)
    assert response.status_code == 200, response.text
    local, hosted = response.json()["results"]
    assert (local["model"], hosted["model"]) == (WHISPER, SERVED)
    check_transcript(local, sentence, wav)
    assert "error" not in hosted, hosted
    assert hosted["text"] == local["text"]  # the same weights and decoding behind the API
    assert hosted["language"] == "en" and hosted["latency_s"] > 0
    assert hosted["duration_s"] == pytest.approx(wav_seconds(wav), abs=0.05)
    assert hosted["cost_usd"] == pytest.approx(PER_MINUTE * hosted["duration_s"] / 60, rel=1e-9)
    page = httpx.get(studio + "/playground", params={"mode": "audio"}, timeout=60)
    assert f'<option value="{SERVED}">' in page.text  # a registered speech model is offered


@pytest.mark.slow
def test_the_transcribe_api_refuses_what_it_cannot_use(studio, chat_model):
    url = studio + API
    wav = b64(b"RIFF" + bytes(64))
    # Over the limit: refused by the declared length, and by the decoded size just past it.
    for size in (26 * 1024 * 1024, MAX_AUDIO_BYTES + 1):
        big = httpx.post(url, json={"models": [chat_model], "audio": b64(bytes(size))}, timeout=120)
        assert big.status_code == 413, big.text
        assert "the playground takes at most 25 MB" in big.json()["error"]
        assert "shorter clip" in big.json()["error"]
    cases = [
        ({"models": [], "audio": wav}, "Pick at least one model."),
        ({"models": [chat_model] * 5, "audio": wav}, "at most 4 models, not 5"),
        ({"models": [chat_model], "audio": ""}, "Choose or record some audio first."),
        ({"models": [chat_model], "audio": "not base64!"}, "The audio is not valid base64."),
        ({"models": [chat_model], "audio": wav, "speed": 2}, "speed: Extra inputs are not permitted"),
    ]
    for body, message in cases:
        answer = httpx.post(url, json=body, timeout=30)
        assert answer.status_code == 400 and message in answer.json()["error"], (body, answer.text)
    not_json = httpx.post(url, content=b"{", headers={"Content-Type": "application/json"}, timeout=30)
    assert not_json.status_code == 400 and "not what the audio playground takes" in not_json.json()["error"]
    # Models that cannot transcribe each say why; the request itself is fine.
    mixed = httpx.post(url, json={"models": ["test/ech", chat_model], "audio": wav}, timeout=30)
    assert mixed.status_code == 200, mixed.text
    unknown, chat = mixed.json()["results"]
    assert "Unknown model 'test/ech'" in unknown["error"] and "Did you mean 'test/echo'" in unknown["error"]
    assert chat["error"].startswith("test/echo cannot take audio")


@pytest.mark.slow
def test_the_catalog_lists_whisper_as_runnable_and_its_page_opens_the_audio_mode(
    studio, whisper_path, chat_model
):
    speech = {"task": "speech-recognition"}
    for query in (speech | {"runnable": "1"}, speech | {"hosting": "local"}):
        found = httpx.get(studio + "/catalog", params=query, timeout=60)
        assert found.status_code == 200 and f'data-model="{WHISPER}"' in found.text, query
    card = httpx.get(studio + f"/models/{WHISPER}", timeout=60)
    assert card.status_code == 200
    assert 'href="/playground?mode=audio&amp;models=local/whisper-base">Try in playground' in card.text
    for query in ({"mode": "audio", "models": WHISPER}, {"models": WHISPER}):  # a speech model: audio
        page = httpx.get(studio + "/playground", params=query, timeout=60)
        assert 'href="/playground?mode=audio" aria-current="page"' in page.text, query
        assert f'<option value="{WHISPER}" selected>' in page.text
    asked = httpx.get(studio + "/playground", params={"mode": "audio", "models": f"{chat_model},{WHISPER}"})
    assert "test/echo cannot take audio: it is a chat model." in asked.text
    text = httpx.get(studio + "/playground", params={"mode": "text", "models": WHISPER})
    assert "local/whisper-base is a speech-recognition model: it takes audio, not a prompt." in text.text


# --- in the browser -------------------------------------------------------------------------------


def read_pane(page) -> dict[str, str]:
    """The one result pane's transcript and stats, once it has finished."""
    finished = "document.querySelectorAll('#au-results .pane.finished').length === 1"
    page.wait_for_function(finished, timeout=240_000)
    pane = page.locator("#au-results .pane").first
    shown = {name: pane.locator(f'[data-stat="{name}"]').inner_text() for name in STATS}
    shown["model"] = pane.get_by_role("heading").inner_text()
    return shown | {"text": pane.locator(".transcript").inner_text()}


STATS = ("latency_s", "real_time_factor", "duration_s", "language", "cost_usd")


def check_pane(shown: dict[str, str], sentence: str) -> None:
    assert shown["model"] == WHISPER
    assert wer(sentence, shown["text"]) < 0.30, shown["text"]
    assert re.fullmatch(r"\d+\.\d\d s", shown["latency_s"]), shown
    assert re.fullmatch(r"\d+\.\d\d", shown["real_time_factor"]), shown
    assert re.fullmatch(r"\d+\.\d s", shown["duration_s"]) and shown["language"] == "en", shown
    assert shown["cost_usd"] == "$0"


UNNAMED_CONTROLS = """() => Array.from(document.querySelectorAll(
  '#audio-form input, #audio-form select, #audio-form button, #audio-form audio'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
  .map(el => el.outerHTML)"""


@pytest.mark.slow
def test_the_audio_playground_transcribes_an_uploaded_file(page, speech_dir, whisper_path):
    wav, sentence = speech_dir[2]
    page.goto("/playground?mode=audio")
    assert page.get_by_role("link", name="Audio", exact=True).get_attribute("aria-current") == "page"
    assert page.evaluate(UNNAMED_CONTROLS) == []  # every control of the panel has a name
    assert page.get_by_role("button", name="Record").is_enabled()  # 127.0.0.1 is a secure context
    page.get_by_label("Model 1", exact=True).select_option(WHISPER)
    page.get_by_label("Audio file").set_input_files(str(wav))
    kb = round(wav.stat().st_size / 1024)
    assert page.locator("#au-chosen-name").inner_text() == f"Chosen: {wav.name} ({kb} KB)"
    transcribe = page.get_by_role("button", name="Transcribe")
    transcribe.focus()
    page.keyboard.press("Enter")  # the keyboard submits the form
    check_pane(read_pane(page), sentence)
    expect(page.locator("#au-status")).to_have_text(re.compile(r"^Done in"))  # set after the last pane
    assert page.locator("#au-results").get_attribute("aria-live") == "polite"
    assert transcribe.is_enabled()
    screenshot(page, "playground-audio-whisper")


@pytest.mark.slow
def test_the_audio_playground_says_what_is_missing_and_refuses_a_dropped_text_file(chat_model, page):
    page.goto(f"/playground?mode=audio&models={chat_model}")
    assert page.get_by_role("alert").first.inner_text().startswith("test/echo cannot take audio")
    page.get_by_role("button", name="Transcribe").click()
    assert page.locator("#au-error").inner_text() == "Choose or record some audio first."
    page.evaluate(
        """() => { const data = new DataTransfer();
        data.items.add(new File(["hello"], "notes.txt", {type: "text/plain"}));
        const drop = new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true});
        document.getElementById('au-drop').dispatchEvent(drop); }"""
    )
    assert page.locator("#au-error").inner_text().startswith("notes.txt is not an audio file (text/plain).")
    assert page.locator("#au-chosen").is_hidden()
    page.set_viewport_size({"width": 360, "height": 740})  # a phone: the panel fits
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.set_viewport_size({"width": 1280, "height": 900})
    for i in range(1, 5):
        page.get_by_label(f"Model {i}", exact=True).select_option("")
    page.get_by_role("button", name="Transcribe").click()
    assert page.locator("#au-error").inner_text() == "Pick at least one model."
    # A page that is not a secure context (http at another address) has no navigator.mediaDevices.
    page.add_init_script(
        """Object.defineProperty(navigator, 'mediaDevices', {value: undefined});
        Object.defineProperty(window, 'isSecureContext', {value: false});"""
    )
    page.reload()
    assert page.get_by_role("button", name="Record").is_disabled()
    assert page.locator("#au-record-note").inner_text() == (
        "Recording works only when the studio is opened at localhost or 127.0.0.1, or over https. "
        "Upload a file instead."
    )


@pytest.fixture
def mic_page(studio, speech_dir, request):
    """A Chromium page whose microphone plays the espeak WAV of sentence 3 (Chromium's fake capture)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"needs {CHROMIUM} (make install-test installs Debian's chromium)")
    wav = speech_dir[3][0]
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
    ]
    watch = Watch(studio)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        context = browser.new_context(base_url=studio, viewport={"width": 1280, "height": 900})
        context.route("**/*", watch.route)
        tab = context.new_page()
        tab.on("console", watch.console)
        tab.on("pageerror", watch.page_error)
        try:
            yield tab
        finally:
            screenshot(tab, request.node.name)
            context.close()
            browser.close()
    assert not watch.foreign and not watch.errors, (watch.foreign, watch.errors)


@pytest.mark.slow
def test_a_recording_from_the_microphone_is_transcribed(mic_page, speech_dir, whisper_path):
    wav, sentence = speech_dir[3]
    page = mic_page
    page.goto(f"/playground?mode=audio&models={WHISPER}")
    record = page.get_by_role("button", name="Record")
    record.click()
    page.wait_for_function("document.getElementById('au-record').getAttribute('aria-pressed') === 'true'")
    page.wait_for_timeout(int((wav_seconds(wav) + 1.0) * 1000))
    page.get_by_role("button", name="Stop recording").click()
    page.wait_for_function("!document.getElementById('au-chosen').hidden")
    assert re.fullmatch(r"Chosen: recording\.\w+ \(\d+ KB\)", page.locator("#au-chosen-name").inner_text())
    page.get_by_role("button", name="Transcribe").click()
    check_pane(read_pane(page), sentence)
