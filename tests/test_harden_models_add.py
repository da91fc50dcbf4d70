"""Issue 11, item 13: `modelatlas models add --path` refuses broken model files, exit 2, no traceback."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
from typer.testing import CliRunner

from modelatlas.cli.main import app

cli = CliRunner()


def _add(path) -> object:
    return cli.invoke(app, ["models", "add", "my/model", "--path", str(path)])


def _listed() -> list[str]:
    return [r["id"] for r in json.loads(cli.invoke(app, ["models", "list", "--json"]).output)]


def _refused(path, says: str) -> None:
    result = _add(path)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # rich wraps long lines
    assert says in message and "cannot be added" in message, message
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "my/model" not in _listed()


@pytest.fixture
def gguf_bytes(smollm2_path) -> bytes:
    with open(smollm2_path, "rb") as f:
        return f.read()


def test_text_empty_and_truncated_gguf_files_are_refused(tmp_path, gguf_bytes):
    text = tmp_path / "notes.gguf"
    text.write_text("these are my notes, not a model\n")
    _refused(text, "is not a GGUF file")
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    _refused(empty, "is empty (0 bytes)")
    half = tmp_path / "half.gguf"
    half.write_bytes(gguf_bytes[: len(gguf_bytes) // 2])  # a download cut off halfway
    _refused(
        half, f"is truncated: {len(gguf_bytes) // 2:,} bytes, but its header promises {len(gguf_bytes):,}"
    )
    header_only = tmp_path / "cut-header.gguf"
    header_only.write_bytes(gguf_bytes[:4096])  # cut inside the vocabulary, in the header itself
    _refused(header_only, "corrupt or cut-off GGUF header")
    counts = tmp_path / "bad-counts.gguf"
    counts.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40) + gguf_bytes[24:4096])
    _refused(counts, "implausible counts")


def test_whole_gguf_is_added(tmp_path, smollm2_path):
    copy = tmp_path / "smol.gguf"
    shutil.copy(smollm2_path, copy)
    result = _add(copy)
    assert result.exit_code == 0, result.output
    assert "my/model" in _listed()


def test_folders_with_a_broken_config_or_no_weights_are_refused(tmp_path, minilm_path):
    empty = tmp_path / "empty-config"
    empty.mkdir()
    (empty / "config.json").write_text("")
    result = _add(empty)
    assert result.exit_code == 2 and "config.json" in result.output, result.output
    assert "my/model" not in _listed()
    unnamed = tmp_path / "unnamed"
    shutil.copytree(minilm_path, unnamed)
    (unnamed / "config.json").write_text("{}")
    _refused(unnamed, "names no model (it has neither model_type nor architectures)")
    weightless = tmp_path / "weightless"
    weightless.mkdir()
    shutil.copy(f"{minilm_path}/config.json", weightless / "config.json")
    _refused(weightless, "has no weight files")
    cut = tmp_path / "cut-weights"
    shutil.copytree(minilm_path, cut)
    weights = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    _refused(cut, "model.safetensors is truncated")


def test_whole_folder_is_added(minilm_path):
    result = _add(minilm_path)
    assert result.exit_code == 0, result.output
    assert "my/model" in _listed()
