"""Shared fixtures. Every test gets its own MODELATLAS_HOME in a temporary folder."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from tests.servers import free_port  # noqa: F401  (re-exported for tests)


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
