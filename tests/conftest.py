"""Shared fixtures. Every test gets its own MODELATLAS_HOME in a temporary folder."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from tests.servers import free_port, llama_cpp_server_args, python_server
from tests.studio_browser import page, studio  # noqa: F401  (browser-test fixtures)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A fresh home folder (and so a fresh SQLite database) per test."""
    path = tmp_path / "home"
    monkeypatch.setenv("MODELATLAS_HOME", str(path))
    monkeypatch.delenv("MODELATLAS_DATABASE_URL", raising=False)
    return path


def run(coro):
    """Run a coroutine to completion in a new event loop."""
    return asyncio.run(coro)


def needs(module: str):
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None, reason=f"needs {module} (pip install 'modelatlas[all]')"
    )


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    from modelatlas.catalog.bundled import resolve_bundled

    return resolve_bundled("local/smollm2-135m-instruct").location


@pytest.fixture(scope="session")
def gemma_path() -> str:
    from modelatlas.catalog.bundled import resolve_bundled

    return resolve_bundled("local/gemma-3-270m").location


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from modelatlas.catalog.bundled import resolve_bundled

    return resolve_bundled("local/all-minilm-l6-v2").location


@pytest.fixture(scope="session")
def coder_path() -> str:
    """The bundled Qwen2.5-Coder-0.5B-Instruct GGUF (assembled once from its six chunks)."""
    from modelatlas.catalog.bundled import resolve_bundled

    return resolve_bundled("local/qwen2.5-coder-0.5b-instruct").location


@pytest.fixture(scope="session")
def whisper_path() -> str:
    """The bundled Whisper base folder for faster-whisper (model.bin assembled once)."""
    from modelatlas.catalog.bundled import resolve_bundled

    return resolve_bundled("local/whisper-base").location


@pytest.fixture(scope="session")
def llama_url(smollm2_path, tmp_path_factory):
    """llama.cpp's own OpenAI-compatible server on a free 127.0.0.1 port, serving SmolLM2."""
    pytest.importorskip("sse_starlette", reason="needs llama-cpp-python[server]")
    port = free_port()
    args = llama_cpp_server_args(smollm2_path, port, "--verbose", "False")
    log = str(tmp_path_factory.mktemp("llama-server") / "server.log")
    with python_server(args, port, ready_path="/v1/models", log_path=log):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory):
    """The test sentences (tests.speech.SENTENCES) spoken by espeak-ng: ``[(wav, text), ...]``."""
    from tests.speech import spoken_sentences

    return spoken_sentences(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def whisper_server(tmp_path_factory, whisper_path):
    """`modelatlas serve` with keys on, serving the bundled Whisper base on a free 127.0.0.1
    port, for the tests that reach it as a hosted model: its /v1 URL and a key's secret."""
    import json
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("serve-whisper")
    env = {**os.environ, "MODELATLAS_HOME": str(folder / "home")}
    env.pop("MODELATLAS_DATABASE_URL", None)
    made = subprocess.run(
        [sys.executable, "-m", "modelatlas", "keys", "create", "client", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    port = free_port()
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--model", "local/whisper-base"]
    with python_server(args, port, ready_path="/health", log_path=str(folder / "server.log"), env=env):
        yield f"http://127.0.0.1:{port}/v1", json.loads(made.stdout)["secret"]


@pytest.fixture(scope="session")
def tiny_vlm_path(tmp_path_factory) -> str:
    """A tiny random LLaVA folder (tests.tiny_vision): loads with backend transformers, takes images."""
    pytest.importorskip("transformers")
    pytest.importorskip("PIL")
    from tests.tiny_vision import build_tiny_vlm

    return str(build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm")))


@pytest.fixture(scope="session")
def tiny_sd_path(tmp_path_factory) -> str:
    """A tiny random Stable-Diffusion-style diffusers pipeline folder (model_index.json), written
    once a session by tests.tiny_diffusion: 32x32 pictures by default, a fraction of a second a step."""
    from tests.tiny_diffusion import build_tiny_sd

    return str(build_tiny_sd(tmp_path_factory.mktemp("tiny-sd") / "tiny-sd"))
