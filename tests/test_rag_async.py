"""RAG is async all the way (issue 12, item 6): a search inside an evaluation runs on the
evaluation's own event loop (before, each search ran in a new event loop in a thread), with the
real all-MiniLM-L6-v2 embedder and a real LanceDB store."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from modelatlas import evals
from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.evals import records
from modelatlas.evals.plan import make_plan
from modelatlas.rag import index, open_kb
from modelatlas.rag.search import close_all, embedding_model
from tests.conftest import run

EMBEDDER = "local/all-minilm-l6-v2"
FACTS = {
    "zephyr.txt": "The launch code of Project Zephyr is ZX-4471.",
    "garden.md": "The rooftop garden grows tomatoes and basil; it is watered every Tuesday.",
    "office.txt": "The office cat is called Biscuit and loves tuna.",
}
QUESTIONS = [
    {"id": "q1", "input": "What is the launch code of Project Zephyr?", "reference": "ZX-4471"},
    {"id": "q2", "input": "When is the rooftop garden watered?", "reference": "Tuesday"},
    {"id": "q3", "input": "What is the office cat called?", "reference": "Biscuit"},
]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    close_all()


@pytest.fixture
def kb(tmp_path) -> str:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text)
    index([folder], "facts")
    return "facts"


@pytest.fixture
def qa(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


def test_the_rag_eval_path_embeds_on_the_evaluations_own_event_loop(kb, qa):
    """Every query embedding of a RAG evaluation happens on the loop that runs the evaluation,
    in its thread: the call-log hook of the pool's embedder (the one the searches share) sees it."""
    user.add(ModelRecord(id="test/echo", backend="echo"))
    plan = make_plan(str(qa), ["test/echo"], strategies=[f"rag:{kb}:2"], metrics=["f1"])
    seen: list[tuple[str, asyncio.AbstractEventLoop, int]] = []

    async def scenario():
        async with embedding_model(EMBEDDER) as embedder:
            embedder.on_call = lambda call: seen.append(
                (call.kind, asyncio.get_running_loop(), threading.get_ident())
            )
            result = await evals.evaluate(plan)
            embedder.on_call = None
        return asyncio.get_running_loop(), threading.get_ident(), result

    loop, thread, result = run(scenario())
    assert [kind for kind, _, _ in seen] == ["embed"] * len(QUESTIONS)
    assert all(seen_loop is loop and seen_thread == thread for _, seen_loop, seen_thread in seen)
    items = {r.item_id: r.output for r in records.load_items(result.run_id)}
    assert all(len(items[q["id"]].retrieved) == 2 for q in QUESTIONS)
    assert any("ZX-4471" in context for context in items["q1"].contexts)


def test_the_sync_search_still_answers_from_inside_a_running_loop(kb):
    """The sync API stays for scripts; inside a running loop it runs in a thread of its own."""

    async def inside():
        return open_kb(kb).search("office cat", k=1)

    assert run(inside())[0].source.endswith("office.txt")


def test_indexing_reads_files_and_writes_the_store_off_the_event_loop(tmp_path, monkeypatch):
    """aindex awaits its embedder on the caller's loop, and its blocking steps (finding and
    reading files, LanceDB writes, the manifest) run in worker threads: observed on the real
    LanceDB store's ``add`` and the real file finder, which are called through, not replaced."""
    import importlib

    from modelatlas.rag.index import aindex
    from modelatlas.rag.store_lance import LanceStore

    index_module = importlib.import_module("modelatlas.rag.index")  # the package names a function so
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text)
    threads: dict[str, set[int]] = {"add": set(), "find": set()}
    real_add, real_find = LanceStore.add, index_module.find_documents

    def add(self, *args):
        threads["add"].add(threading.get_ident())
        return real_add(self, *args)

    def find(*args):
        threads["find"].add(threading.get_ident())
        return real_find(*args)

    monkeypatch.setattr(LanceStore, "add", add)
    monkeypatch.setattr(index_module, "find_documents", find)

    async def main():
        report = await aindex([folder], "offloop")
        return report, threading.get_ident()

    report, loop_thread = asyncio.run(main())
    assert report.added == 3 and report.chunks == 3
    assert threads["add"] and loop_thread not in threads["add"]
    assert threads["find"] and loop_thread not in threads["find"]
    with open_kb("offloop") as kb:
        assert kb.search("What is the office cat called?", k=1)[0].source.endswith("office.txt")
