"""Hardening of RAG indexing (issue 11): a .txt, .md or .html file whose content is binary is
skipped with a warning (in the CLI and in the index result, counted), never indexed as garbage.
Real components: the bundled all-MiniLM embedder, LanceDB in the temporary home, the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelatlas.rag import index, open_kb
from modelatlas.rag.manifest import load_manifest
from modelatlas.rag.readers import binary_reason, read_text
from modelatlas.rag.search import close_all

GOOD = "The launch code of Project Zephyr is ZX-4471. Marta chose it in 2019 after a long debate."
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00" * 40


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    close_all()


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text(GOOD)
    (folder / "photo.txt").write_bytes(PNG)  # an image saved under a text name
    return folder


def cli(*args: str):
    from modelatlas.cli.main import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def flat(text: str) -> str:
    return " ".join(text.split())


def test_rag_index_cli_skips_a_binary_txt_and_says_so(docs):
    """Before: photo.txt was decoded with replacement characters and embedded as chunks."""
    result = cli("rag", "index", str(docs), "--name", "kb")
    assert result.exit_code == 0, result.output
    warning = flat(result.stderr)
    assert "Warning: Skipped" in warning and "photo.txt" in warning and "NUL bytes" in warning
    assert "1 added" in flat(result.stdout) and "1 skipped (binary content, not text)" in flat(result.stdout)
    manifest = load_manifest("kb")
    assert [Path(s).name for s in manifest.files] == ["good.txt"]
    hits = open_kb("kb").search("Project Zephyr launch code", k=5)
    assert hits and {Path(h.source).name for h in hits} == {"good.txt"}
    assert all("\ufffd" not in h.text for h in hits)


def test_the_index_result_counts_and_names_the_binary_files(docs):
    (docs / "noise.md").write_bytes(os.urandom(4000).replace(b"\x00", b"\x01"))  # no NUL byte at all
    (docs / "page.html").write_bytes(b"<html>" + PNG + b"</html>")
    report = index([docs], "kb")
    assert (report.added, report.skipped, len(report.binary)) == (1, 0, 3)
    assert sorted(Path(f.source).name for f in report.binary) == ["noise.md", "page.html", "photo.txt"]
    assert len(report.warnings) == 3 and all("was not indexed" in w for w in report.warnings)
    assert "not text" in next(f.reason for f in report.binary if f.source.endswith("noise.md"))


def test_a_file_that_turns_binary_is_removed_from_the_index(docs):
    (docs / "photo.txt").unlink()
    assert index([docs], "kb").added == 1
    (docs / "good.txt").write_bytes(PNG)  # overwritten by a binary file
    (docs / "other.txt").write_text("The rooftop garden is watered every Tuesday.")
    report = index([docs], "kb")
    assert (report.added, report.removed, len(report.binary)) == (1, 1, 1)
    assert [Path(s).name for s in load_manifest("kb").files] == ["other.txt"]
    assert {Path(h.source).name for h in open_kb("kb").search("launch code", k=5)} == {"other.txt"}


def test_only_binary_files_is_a_clear_error(tmp_path):
    folder = tmp_path / "blobs"
    folder.mkdir()
    (folder / "a.txt").write_bytes(PNG)
    result = cli("rag", "index", str(folder), "--name", "kb")
    assert result.exit_code == 2, result.output
    assert "No text documents to index" in flat(result.output) and "a.txt" in result.output
    assert "Traceback" not in result.output
    assert load_manifest("kb") is None


def test_text_in_other_encodings_is_not_called_binary():
    latin = "Le café près de la gare ouvre à sept heures; crème brûlée le vendredi.\n" * 5
    assert binary_reason(Path("menu.txt"), latin.encode("latin-1")) is None  # a few bad chars only
    utf16 = "Réunion à 9 h.\n".encode("utf-16")
    assert binary_reason(Path("notes.md"), utf16) is None
    assert read_text(Path("notes.md"), utf16) == "Réunion à 9 h.\n"
    assert binary_reason(Path("ansi.txt"), b"\x1b[1mbold\x1b[0m and tabs\there\r\n") is None
    assert binary_reason(Path("empty.txt"), b"") is None
    assert binary_reason(Path("doc.pdf"), PNG) is None  # PDFs are pypdf's to judge
    assert binary_reason(Path("x.txt"), b"text\x00more") is not None
