"""RAG with real components: the bundled all-MiniLM embedder, real LanceDB and Qdrant files in
the temporary home, real (hand-written) PDFs, and the echo backend for deterministic answers."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from pypdf import PdfWriter
from typer.testing import CliRunner

from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import RagError, UnknownKnowledgeBaseError, UnknownModelError
from modelatlas.loading import load_model
from modelatlas.rag import ask, context_prompt, index, list_kbs, open_kb, pack
from modelatlas.rag.chunking import chunk_text
from modelatlas.rag.manifest import kb_dir, load_manifest
from modelatlas.rag.search import close_all, rrf
from modelatlas.rag.types import DocChunk, Hit, Position
from modelatlas.types import Message
from tests.conftest import run

HANDBOOK = Path(__file__).resolve().parents[1] / "examples" / "edtech-support" / "docs" / "handbook.md"
ZEPHYR = "The launch code of Project Zephyr is ZX-4471. Marta chose it in 2019 after a long debate."
GARDEN = "# Rooftop garden\n\nThe rooftop garden grows tomatoes and basil. It is watered every Tuesday.\n"
PAGE = (
    "<html><head><title>Office</title><style>.x { color: red }</style>"
    "<script>var token = 'SECRETSCRIPTTOKEN';</script></head>"
    "<body><h1>Office life</h1><p>The office cat is called Biscuit and loves tuna.</p></body></html>"
)
PRINTER = ["The Orion printer on floor three", "needs a blue toner cartridge, model T-88."]

# qdrant-client warns (from a background check) that the absent test server reported no version.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    close_all()  # Qdrant's local mode locks its folder until its client is closed


def pdf_bytes(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF whose text is ``lines`` (Helvetica, one line each)."""
    text = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    content = f"BT /F1 12 Tf 72 720 Td {text} ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    (folder / "more").mkdir(parents=True)
    (folder / "zephyr.txt").write_text(ZEPHYR)
    (folder / "garden.md").write_text(GARDEN)
    (folder / "more" / "office.html").write_text(PAGE)
    (folder / "more" / "printer.pdf").write_bytes(pdf_bytes(PRINTER))
    (folder / "photo.png").write_bytes(b"\x89PNG not a document")
    return folder


def top_source(kb: str, query: str, **kwargs) -> str:
    return Path(open_kb(kb).search(query, **kwargs)[0].source).name


def echo(reply: str, **options) -> ModelRecord:
    return ModelRecord(id="test/echo", backend="echo", options={"reply": reply, **options})


# -- indexing and search --------------------------------------------------------------------


def test_index_reads_every_kind_of_document_and_search_finds_the_answer(docs):
    report = index([docs], "kb")
    assert (report.added, report.updated, report.removed, report.unchanged) == (4, 0, 0, 0)
    assert report.skipped == 1 and report.chunks == 4
    assert top_source("kb", "What is the launch code of Project Zephyr?") == "zephyr.txt"
    assert top_source("kb", "Which toner cartridge does the Orion printer need?") == "printer.pdf"
    assert top_source("kb", "What is the name of the office cat?") == "office.html"
    assert top_source("kb", "When is the rooftop garden watered?") == "garden.md"

    hit = open_kb("kb").search("Zephyr launch code", k=1)[0]
    assert hit.text == (docs / "zephyr.txt").read_text()[hit.position.start : hit.position.end]
    assert hit.source == str((docs / "zephyr.txt").resolve()) and 0 < hit.score <= 1.0
    everything = open_kb("kb").search("token", k=10)
    assert len(everything) == 4 and not any("SECRETSCRIPTTOKEN" in h.text for h in everything)
    assert [m.name for m in list_kbs()] == ["kb"]
    manifest = load_manifest("kb")
    assert (manifest.store, manifest.chunk_tokens, manifest.overlap) == ("lancedb", 200, 40)
    assert manifest.embedder == "local/all-minilm-l6-v2" and manifest.dimensions == 384


def test_the_handbook_is_chunked_within_the_token_limit_and_answers_a_question():
    report = index([HANDBOOK], "handbook", chunk_tokens=120, overlap=20)
    assert report.chunks > 10
    embedder = load_model("local/all-minilm-l6-v2")
    kb = open_kb("handbook")
    hits = kb.search("How many days do I have to ask for a refund?", k=3)
    assert any("14-day refund window" in h.text for h in hits)
    hybrid = kb.search("Streak Freeze", k=3, hybrid=True)
    assert all("Streak Freeze" in h.text for h in hybrid[:2])
    text = HANDBOOK.read_text()
    positions = chunk_text(text, embedder.count_tokens, 120, 20)
    assert len(positions) == report.chunks and positions[0].start == 0
    assert positions[-1].end == len(text.rstrip())
    for before, after in itertools.pairwise(positions):
        assert embedder.count_tokens(text[before.start : before.end]) <= 120
        assert before.start < after.start < before.end  # neighbours overlap


def test_chunks_grow_to_the_limit_and_step_back_by_the_overlap():
    words = " ".join(f"w{i}" for i in range(1000))
    count = lambda s: len(s.split())  # noqa: E731 (a tokenizer where one word is one token)
    positions = chunk_text(words, count, chunk_tokens=50, overlap=10)
    chunks = [words[p.start : p.end].split() for p in positions]
    assert all(len(c) == 50 for c in chunks[:-1]) and chunks[0][0] == "w0" and chunks[-1][-1] == "w999"
    for before, after in itertools.pairwise(chunks):
        assert before[-10:] == after[:10]
    assert [p.index for p in positions] == list(range(len(positions)))
    assert chunk_text("", count) == [] and chunk_text("one", count) == [Position(0, 0, 3)]
    with pytest.raises(RagError, match="overlap"):
        chunk_text(words, count, chunk_tokens=50, overlap=50)


def test_reindexing_skips_unchanged_files_reembeds_edited_ones_and_removes_deleted_ones(docs):
    index([docs], "kb")
    again = index([docs], "kb")
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 4)

    (docs / "zephyr.txt").write_text(ZEPHYR.replace("ZX-4471", "QV-9001"))
    edited = index([docs], "kb")
    assert (edited.added, edited.updated, edited.removed, edited.unchanged) == (0, 1, 0, 3)
    texts = [h.text for h in open_kb("kb").search("Project Zephyr launch code", k=10, hybrid=True)]
    assert any("QV-9001" in t for t in texts) and not any("ZX-4471" in t for t in texts)

    (docs / "garden.md").unlink()
    (docs / "new.txt").write_text("The coffee machine is descaled on Fridays.")
    changed = index([docs], "kb")
    assert (changed.added, changed.updated, changed.removed, changed.unchanged) == (1, 0, 1, 3)
    kb = open_kb("kb")
    assert not any(h.source.endswith("garden.md") for h in kb.search("rooftop garden tomatoes", k=10))
    assert kb.store.count() == kb.manifest.chunks == 4
    assert top_source("kb", "When is the coffee machine descaled?") == "new.txt"


def test_hybrid_search_fuses_vector_and_full_text_ranks(docs):
    index([docs], "kb")
    hits = open_kb("kb").search("T-88", k=2, hybrid=True)
    assert Path(hits[0].source).name == "printer.pdf"
    assert hits[0].score == pytest.approx(2 / 61)  # first in both lists
    a, b, c = (DocChunk(x, "s", "h", x, Position(0, 0, 1)) for x in "abc")
    fused = rrf([[(a, 0.9), (b, 0.8)], [(b, 3.0), (c, 2.0)]])
    assert [chunk.chunk_id for chunk, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_qdrant_local_mode_gives_the_same_search(docs):
    report = index([docs], "qkb", store="qdrant")
    assert report.chunks == 4 and (kb_dir("qkb") / "qdrant").is_dir()
    assert top_source("qkb", "What is the launch code of Project Zephyr?") == "zephyr.txt"
    assert top_source("qkb", "Which toner cartridge does the Orion printer need?") == "printer.pdf"
    assert top_source("qkb", "T-88", hybrid=True) == "printer.pdf"
    lance = index([docs], "lkb")
    assert lance.chunks == report.chunks
    for query in ("office cat", "garden watering day", "Zephyr"):
        q_hits = open_kb("qkb").search(query, k=4)
        l_hits = open_kb("lkb").search(query, k=4)
        assert [h.chunk_id for h in q_hits] == [h.chunk_id for h in l_hits]
        assert [h.score for h in q_hits] == pytest.approx([h.score for h in l_hits], abs=1e-4)
    (docs / "garden.md").unlink()
    assert index([docs], "qkb").removed == 1
    assert open_kb("qkb").store.count() == 3
    with pytest.raises(RagError, match="Cannot reach the Qdrant server"):
        index([docs], "remote", url="http://127.0.0.1:9")  # the server path: nothing listens there
    assert load_manifest("remote") is None


def test_search_works_from_inside_a_running_event_loop(docs):
    index([docs], "kb")

    async def inside():
        return open_kb("kb").search("Zephyr launch code", k=1), await open_kb("kb").asearch("office cat", k=1)

    sync_hits, async_hits = run(inside())
    assert sync_hits[0].source.endswith("zephyr.txt") and async_hits[0].source.endswith("office.html")


# -- errors and safety --------------------------------------------------------------------------


def test_clear_errors_for_empty_folders_unknown_kbs_and_unreadable_pdfs(tmp_path, docs):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RagError, match="No documents"):
        index([empty], "kb")
    (empty / "a.png").write_bytes(b"png")
    with pytest.raises(RagError, match="1 file"):
        index([empty], "kb")

    index([docs], "handbook")
    with pytest.raises(UnknownKnowledgeBaseError) as info:
        open_kb("handbok")
    assert "Did you mean 'handbook'" in str(info.value) and info.value.exit_code == 2

    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    with pytest.raises(RagError, match=r"broken\.pdf"):
        index([docs], "other")
    assert load_manifest("other") is None
    (docs / "broken.pdf").unlink()
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt("secret", algorithm="RC4-128")
    with open(docs / "locked.pdf", "wb") as out:
        writer.write(out)
    with pytest.raises(RagError, match=r"locked\.pdf is an encrypted PDF"):
        index([docs], "other")

    with pytest.raises(RagError, match="rebuild"):
        index([docs], "handbook", chunk_tokens=100)
    with pytest.raises(RagError, match="cut"):
        index([docs], "big", chunk_tokens=1000, overlap=10)
    with pytest.raises(RagError, match="Unknown store"):
        index([docs], "big", store="chroma")
    assert not kb_dir("big").exists()


def test_a_failed_run_leaves_the_previous_index_searchable(tmp_path, docs):
    index([docs], "kb")
    before = load_manifest("kb")
    with pytest.raises(UnknownModelError):
        index([docs], "kb", embedder="local/no-such-embedder", rebuild=True)
    assert load_manifest("kb") == before
    assert top_source("kb", "Zephyr launch code") == "zephyr.txt"
    with pytest.raises(UnknownModelError):
        index([docs], "fresh", embedder="local/no-such-embedder")
    assert not kb_dir("fresh").exists() and [m.name for m in list_kbs()] == ["kb"]


def test_embedding_that_fails_midway_writes_nothing_visible_and_the_next_run_cleans_up(tmp_path):
    folder = tmp_path / "hb"
    folder.mkdir()
    (folder / "handbook.md").write_text(HANDBOOK.read_text())
    (folder / "zephyr.txt").write_text(ZEPHYR)
    index([folder], "kb", chunk_tokens=30, overlap=5)
    before = load_manifest("kb")
    assert before.chunks > 64  # more than one embedding batch

    def crash(done: int, total: int) -> None:
        if done >= 64:
            raise RuntimeError("power cut")

    (folder / "handbook.md").write_text(HANDBOOK.read_text() + "\nThe mascot is a purple heron.\n")
    with pytest.raises(RuntimeError, match="power cut"):
        index([folder], "kb", progress=crash)
    kb = open_kb("kb")
    assert kb.manifest == before and kb.store.count() > before.chunks  # the new rows are orphans
    hits = kb.search("What is the launch code of Project Zephyr?", k=20)
    assert hits[0].source.endswith("zephyr.txt") and len({h.chunk_id for h in hits}) == 20
    assert all(h.chunk_id.split("-")[1] == before.files[h.source].hash[:12] for h in hits)
    assert not any("purple heron" in h.text for h in kb.search("mascot purple heron", k=20, hybrid=True))

    with pytest.raises(RuntimeError, match="power cut"):
        index([folder], "kb", rebuild=True, progress=crash)  # a rebuild writes a new table
    assert load_manifest("kb") == before

    report = index([folder], "kb")
    assert (report.updated, report.unchanged) == (1, 1)
    kb = open_kb("kb")
    assert kb.store.count() == kb.manifest.chunks and kb.store.tables() == [kb.manifest.table]
    assert any("purple heron" in h.text for h in kb.search("mascot purple heron", k=3, hybrid=True))


def test_rebuild_changes_the_settings_and_replaces_the_table(docs):
    index([docs], "kb")
    old_table = load_manifest("kb").table
    report = index([docs], "kb", chunk_tokens=100, overlap=10, rebuild=True)
    assert (report.added, report.updated, report.unchanged) == (0, 4, 0)
    manifest = load_manifest("kb")
    assert (manifest.chunk_tokens, manifest.table != old_table) == (100, True)
    assert open_kb("kb").store.tables() == [manifest.table]
    assert top_source("kb", "Zephyr launch code") == "zephyr.txt"


# -- asking ---------------------------------------------------------------------------------------


def test_citations_map_back_to_the_packed_sources(docs):
    index([docs], "kb")
    model = load_model(echo("The answer is 42 [2]."))
    answer = run(ask("kb", "What is the launch code of Project Zephyr?", model, k=3))
    assert answer.text == "The answer is 42 [2]." and answer.cited and answer.dropped == 0
    assert len(answer.hits) == 3 and [c.n for c in answer.citations] == [2]
    assert answer.citations[0].source == answer.hits[1].source
    assert answer.citations[0].chunk_id == answer.hits[1].chunk_id

    silent = run(ask("kb", "What is the launch code?", load_model(echo("I do not know.")), k=3))
    assert not silent.cited and [c.n for c in silent.citations] == [1, 2, 3]
    several = run(ask("kb", "Who?", load_model(echo("Both [1][3], not [9].")), k=3))
    assert [c.n for c in several.citations] == [1, 3]


def test_the_budget_guard_drops_chunks_that_do_not_fit(docs):
    index([HANDBOOK], "kb")
    # The echo model counts words: a 200-token chunk is ~130 words, so 260 words fit one or two.
    model = load_model(echo("See [1].", context_length=400))
    answer = run(ask("kb", "How do refunds work?", model, k=5, max_tokens=16))
    assert answer.dropped > 0 and len(answer.hits) + answer.dropped == 5 and answer.hits

    hits = [
        Hit(str(i), "word " * n, f"/d/{i}.txt", Position(i, 0, 1), 1.0) for i, n in enumerate([10, 50, 5])
    ]
    count = lambda s: len(s.split())  # noqa: E731
    kept, dropped = pack(hits, 30, count)
    assert [h.chunk_id for h in kept] == ["0", "2"] and dropped == 1


def test_context_prompt_numbers_the_sources_for_chat_and_completion_models():
    hits = [
        Hit("a", "Alpha text.", "/x/a.md", Position(0, 0, 11), 0.9),
        Hit("b", "Beta.", "/x/b.md", Position(0, 0, 5), 0.8),
    ]
    chat = context_prompt("Why?", hits, "chat", "Be brief.")
    assert (
        isinstance(chat[0], Message) and chat[0].role == "system" and chat[0].content.startswith("Be brief.")
    )
    assert "[1] a.md\nAlpha text." in chat[1].content and "[2] b.md\nBeta." in chat[1].content
    completion = context_prompt("Why?", hits, "completion")
    assert isinstance(completion, str) and completion.endswith("Question: Why?\nAnswer:")


@pytest.mark.slow
def test_ask_with_smollm2_and_the_cli(docs):
    cli = CliRunner()
    result = cli.invoke(_app(), ["rag", "index", str(docs), "--name", "kb"])
    assert result.exit_code == 0, result.output
    assert "4 chunks" in result.output and "1 skipped" in result.output

    result = cli.invoke(_app(), ["rag", "search", "kb", "Project Zephyr launch code", "--json", "--k", "2"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["rank"] == 1 and rows[0]["source"].endswith("zephyr.txt")
    result = cli.invoke(_app(), ["rag", "search", "kb", "office cat", "--hybrid"], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and "office.html" in result.output

    answer = run(ask("kb", "What is the launch code of Project Zephyr?", "local/smollm2-135m-instruct", k=2))
    assert answer.text and answer.usage.output_tokens > 0
    assert {c.source for c in answer.citations} <= {h.source for h in answer.hits}

    result = cli.invoke(
        _app(),
        [
            "rag",
            "ask",
            "kb",
            "What is the office cat called?",
            "--model",
            "local/smollm2-135m-instruct",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["answer"] and data["sources"] and data["citations"]

    listed = json.loads(cli.invoke(_app(), ["rag", "list", "--json"]).output)
    assert [(k["name"], k["files"], k["chunks"]) for k in listed] == [("kb", 4, 4)]
    missing = cli.invoke(_app(), ["rag", "search", "kbb", "x"])
    assert missing.exit_code == 2 and "Did you mean 'kb'" in missing.output


def _app():
    from modelatlas.cli.main import app

    return app
