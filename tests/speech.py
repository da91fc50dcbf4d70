"""Real speech for the tests: known English sentences spoken by espeak-ng into WAV files.

No audio is downloaded or checked in. espeak-ng (Debian's package; the Makefile installs it)
writes 22,050 Hz mono 16-bit WAV; Whisper resamples to 16 kHz itself. The sentences are
plain and use no digits, so that a transcript's words can be compared with them directly.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back when you get home tonight.",
    "The weather today is sunny with a light breeze.",
    "She opened the window and looked at the garden.",
    "We will meet at the station before the train leaves.",
]


def espeak() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        pytest.skip("needs Debian's espeak-ng (apt-get install espeak-ng; `make test` installs it)")
    return found


def speak(text: str, path: Path, words_per_minute: int = 130, voice: str = "en-us") -> Path:
    """``text`` spoken into the WAV file ``path`` (returned)."""
    subprocess.run(
        [espeak(), "-v", voice, "-s", str(words_per_minute), "-w", str(path), text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


def spoken_sentences(folder: Path) -> list[tuple[Path, str]]:
    """Every sentence of SENTENCES as ``folder/sNN.wav``, with its text."""
    folder.mkdir(parents=True, exist_ok=True)
    return [(speak(text, folder / f"s{i:02d}.wav"), text) for i, text in enumerate(SENTENCES)]
