"""Model cards (markdown, JSON, Hugging Face) and the evaluation results they read from the store."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml
from sqlalchemy import text

from modelatlas import store
from modelatlas.catalog import cards
from modelatlas.catalog.bundled import bundled_records
from modelatlas.catalog.card_samples import KEY_ENV, SERVE_URL, curl_sample, python_sample
from modelatlas.catalog.records import Benchmark, Capabilities, Link, Modalities, ModelRecord, Price
from modelatlas.errors import InvalidRequestError
from modelatlas.store import db

HOSTED = ModelRecord(
    id="groq/llama-3.3-70b-versatile",
    name="Llama 3.3 70B Versatile",
    family="llama",
    mode="chat",
    tasks=["chat", "text-generation", "code"],
    modalities=Modalities(input=["text"], output=["text"]),
    architecture="decoder-only",
    open_weights=True,
    license="llama3.3",
    hosting="hosted",
    parameters=70_553_706_496,
    context_length=131_072,
    max_output=32_768,
    price=Price(input=0.59, output=0.79, cache_read=0.3),
    knowledge_cutoff="2023-12",
    release_date="2024-12-06",
    capabilities=Capabilities(tool_calling=True, structured_output=False),
    base_model="meta-llama/Llama-3.3-70B-Instruct",
    weights=[Link(label="Hugging Face", url="https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct")],
    benchmarks=[
        Benchmark(
            name="MMLU", score=86.0, metric="accuracy", source="https://example.org/mmlu", date="2024-12"
        )
    ],
    links=[Link(label="Provider docs", url="https://console.groq.com/docs/models")],
    source="models.dev",
    backend="openai",
)
MYSTERY = ModelRecord(id="acme/mystery")
RECORDS = [*bundled_records(), HOSTED]


def _ids(records):
    return [r.id for r in records]


def _front_matter(card: str) -> tuple[dict, str]:
    assert card.startswith("---\n")
    front, body = card.removeprefix("---\n").split("\n---\n", 1)
    return yaml.safe_load(front), body


def _fact(card: str, label: str) -> str:
    match = re.search(rf"^\| {re.escape(label)} \| (.*) \|$", card, re.MULTILINE)
    assert match, f"no {label!r} row"
    return match.group(1)


def _record_two(model_id: str) -> None:
    store.record_result("run-a", model_id, "qa.jsonl", "accuracy", 0.61, n=200, strategy="zero-shot")
    store.record_result(
        "run-b", model_id, "qa.jsonl", "accuracy", 0.7345, n=200, ci_low=0.67, ci_high=0.79,
        strategy="few-shot", dataset_hash="sha256:0123456789abcdef",
    )  # fmt: skip


# --- markdown --------------------------------------------------------------------------------


@pytest.mark.parametrize("record", RECORDS, ids=_ids(RECORDS))
def test_markdown_card_has_every_section(record):
    card = cards.render(record, "md")
    assert card.startswith(f"# {record.name}\n")
    for heading in [
        "## Facts", "## Description", "## Intended use", "## Training data", "## Limitations",
        "## How to use it", "## Evaluation results", "## Published benchmarks", "## Sources",
    ]:  # fmt: skip
        assert f"\n{heading}\n" in card
    for label, _ in cards.facts(record):
        assert f"| {label} |" in card
    assert f"modelatlas eval DATASET --model {record.id}" in card  # no results yet
    for link in record.weights:
        assert link.url in card


def test_bundled_facts_are_shown_in_human_form():
    smol = next(r for r in bundled_records() if r.id == "local/smollm2-135m-instruct")
    card = cards.card_markdown(smol, [])
    assert _fact(card, "Parameters").startswith("135M")
    assert _fact(card, "Quantization") == "Q4_1"
    assert _fact(card, "Context length") == "8,192 tokens"
    assert _fact(card, "Licence") == "apache-2.0"
    assert _fact(card, "Max output") == "unknown"
    assert _fact(card, "Knowledge cutoff") == "unknown"
    assert "None published in the catalog's sources." in card
    assert cards.human_count(22_713_728) == "22.7M"
    assert cards.human_count(999_950_000) == "1B"
    assert cards.human_count(70_553_706_496) == "70.6B"


def test_unknown_facts_say_unknown_and_nothing_is_invented():
    card = cards.card_markdown(MYSTERY, [])
    for label in [
        "Family", "Tasks", "Modalities in", "Architecture", "Open weights", "Licence", "Hosting",
        "Parameters", "Quantization", "Context length", "Price per 1M tokens", "Knowledge cutoff",
        "Release date", "Memory to run", "Fits this machine", "Backend", "Location",
    ]:  # fmt: skip
        assert _fact(card, label) == "unknown", label
    assert _fact(card, "Provider") == "acme"
    assert _fact(card, "Runnable here now") == "no"
    assert "sources give no description." in card
    assert "give no information on the training data." in card
    assert "modelatlas models add acme/mystery" in card


def test_hosted_card_shows_price_benchmarks_and_weights():
    card = cards.card_markdown(HOSTED, [])
    assert _fact(card, "Price per 1M tokens") == "$0.59 in / $0.79 out; cache read $0.30"
    assert _fact(card, "Parameters").startswith("70.6B")
    assert _fact(card, "Capabilities").startswith("tool calling: yes; reasoning: unknown")
    assert "| MMLU | 86 | accuracy | [link](https://example.org/mmlu) | 2024-12 |" in card
    assert "- Weights: [Hugging Face](https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct)" in card
    assert "Its knowledge cutoff is 2023-12." in card
    assert "- It knows nothing that happened after 2023-12." in card


def test_base_and_embedding_models_say_what_they_do():
    by_id = {r.id: r for r in bundled_records()}
    gemma = cards.card_markdown(by_id["local/gemma-3-270m"], [])
    assert "not tuned to follow instructions" in gemma
    minilm = cards.card_markdown(by_id["local/all-minilm-l6-v2"], [])
    assert "turns text into vectors" in minilm
    assert f"{SERVE_URL}/embeddings" in minilm
    assert "chat/completions" not in minilm


def test_results_table_shows_value_ci_and_run():
    _record_two(HOSTED.id)
    card = cards.render(HOSTED, "md")
    assert "No evaluation results yet" not in card
    rows = [line for line in card.splitlines() if "| qa.jsonl" in line]
    assert len(rows) == 2
    assert rows[0].startswith(
        "| qa.jsonl (hash sha256:01234) | few-shot | accuracy | 0.7345 (0.67–0.79) | 200 |"
    )
    assert "`run-b`" in rows[0]
    assert re.search(r"\| \d{4}-\d\d-\d\d \d\d:\d\d UTC \|$", rows[0])
    assert rows[1].startswith("| qa.jsonl | zero-shot | accuracy | 0.61 | 200 | `run-a` |")


# --- code samples -----------------------------------------------------------------------------


@pytest.mark.parametrize("record", RECORDS, ids=_ids(RECORDS))
def test_code_samples_name_the_model_and_the_server(record):
    code = python_sample(record)
    compile(code, "<sample>", "exec")
    assert f'"{record.id}"' in code
    assert f'base_url="{SERVE_URL}"' in code and KEY_ENV in code
    curl = curl_sample(record)
    assert curl.startswith(f"curl {SERVE_URL}/")
    if record.mode == "transcription":  # an upload: multipart form fields, not a JSON body
        assert f"-F model={record.id} " in curl and "-F file=@" in curl
    else:
        body = json.loads(re.search(r"-d '(.*)'", curl).group(1))
        assert body["model"] == record.id
    card = cards.card_markdown(record, [])
    assert "modelatlas serve" in card and "modelatlas keys create" in card
    if record.mode == "transcription":
        assert f"modelatlas run {record.id} " in card and "/audio/transcriptions" in curl
    elif record.mode == "embedding":
        assert "/embeddings" in curl
    else:
        assert f"modelatlas run {record.id} " in card
        assert "/completions" in curl


# --- Hugging Face card ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "license_", "base", "tag"),
    [
        (
            "local/smollm2-135m-instruct",
            "apache-2.0",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "text-generation",
        ),
        ("local/gemma-3-270m", "gemma", "google/gemma-3-270m", "text-generation"),
        (
            "local/all-minilm-l6-v2",
            "apache-2.0",
            "sentence-transformers/all-MiniLM-L6-v2",
            "feature-extraction",
        ),
    ],
)
def test_hf_card_front_matter_for_bundled(model_id, license_, base, tag):
    record = next(r for r in bundled_records() if r.id == model_id)
    meta, body = _front_matter(cards.render(record, "hf"))
    assert meta["license"] == license_
    assert meta["base_model"] == base
    assert meta["pipeline_tag"] == tag
    assert "modelatlas" in meta["tags"]
    assert "model-index" not in meta
    assert body.lstrip().startswith(f"# {record.name}")


def test_hf_card_model_index_holds_our_results():
    _record_two(HOSTED.id)
    store.record_result("run-c", HOSTED.id, "qa.jsonl", "accuracy", 0.75, n=200, strategy="few-shot")
    meta, _ = _front_matter(cards.render(HOSTED, "hf"))
    assert meta["license"] == "llama3.3"
    assert meta["base_model"] == "meta-llama/Llama-3.3-70B-Instruct"
    [index] = meta["model-index"]
    assert index["name"] == HOSTED.id
    by_strategy = {m["name"]: m for entry in index["results"] for m in entry["metrics"]}
    assert by_strategy["accuracy (few-shot)"]["value"] == 0.75  # the newest of the two few-shot runs
    assert by_strategy["accuracy (zero-shot)"] == {
        "type": "accuracy",
        "value": 0.61,
        "name": "accuracy (zero-shot)",
    }
    entry = index["results"][0]
    assert entry["task"]["type"] == "text-generation"
    assert entry["dataset"]["name"] == "qa.jsonl"


def test_hf_card_leaves_out_what_is_unknown():
    meta, _ = _front_matter(cards.card_hf(MYSTERY, []))
    assert "license" not in meta and "base_model" not in meta
    assert meta["pipeline_tag"] == "text-generation"  # mode "chat" by default
    proprietary = MYSTERY.model_copy(update={"license": "Proprietary"})
    meta, _ = _front_matter(cards.card_hf(proprietary, []))
    assert (meta["license"], meta["license_name"]) == ("other", "Proprietary")
    encdec = MYSTERY.model_copy(update={"architecture": "encoder-decoder"})
    assert cards.pipeline_tag(encdec) == "text2text-generation"


# --- JSON -------------------------------------------------------------------------------------


def test_json_card_round_trips():
    empty = json.loads(cards.render(HOSTED, "json"))
    assert empty["id"] == HOSTED.id and empty["results"] == []
    assert empty["price"] == {"input": 0.59, "output": 0.79, "cache_read": 0.3}
    assert empty["benchmarks"][0]["name"] == "MMLU"
    assert empty["parameters_human"] == "70.6B"
    _record_two(HOSTED.id)
    data = json.loads(cards.render(HOSTED, "json"))
    assert [r["run_id"] for r in data["results"]] == ["run-b", "run-a"]
    assert data["results"][0]["ci_low"] == 0.67
    assert datetime.fromisoformat(data["results"][0]["created_at"]).tzinfo is not None
    for record in bundled_records():
        assert json.loads(cards.render(record, "json"))["id"] == record.id


def test_unknown_format_is_refused():
    with pytest.raises(InvalidRequestError, match="md, json, hf"):
        cards.render(HOSTED, "pdf")


# --- the store ---------------------------------------------------------------------------------


def test_results_come_back_newest_first_per_model():
    first = store.record_result("r1", "a/one", "d", "accuracy", 0.5, n=10)
    store.record_result("r1", "b/two", "d", "accuracy", 0.9, n=10)
    second = store.record_result("r2", "a/one", "d", "accuracy", 0.6, n=10, ci_low=0.4, ci_high=0.8)
    rows = store.results_for_model("a/one")
    assert [r["id"] for r in rows] == [second, first]
    assert rows[0]["ci_low"] == 0.4 and rows[0]["model_id"] == "a/one"
    assert rows[0]["created_at"].tzinfo is not None
    assert rows[0]["created_at"] >= rows[1]["created_at"]
    assert store.results_for_model("c/none") == []


def test_bad_results_are_refused():
    with pytest.raises(InvalidRequestError):
        store.record_result("r", "a/one", "d", "accuracy", 0.5, n=10, ci_low=0.7, ci_high=0.6)
    with pytest.raises(InvalidRequestError):
        store.record_result("r", "a/one", "d", "accuracy", 0.5, n=10, ci_low=0.4)
    with pytest.raises(InvalidRequestError):
        store.record_result("r", "a/one", "d", "accuracy", float("nan"), n=10)
    with pytest.raises(InvalidRequestError):
        store.record_result("r", "a/one", "d", "accuracy", 0.5, n=-1)
    assert store.results_for_model("a/one") == []


def test_upgrade_from_0002_keeps_rows(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    engine = db.create(url)
    db.migrate(engine, "0002")
    assert "eval_results" not in db.table_names(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO registered_models (id, record, source, added_at) VALUES (:i, :r, 'user', :t)"),
            {
                "i": "ollama/llama3.2",
                "r": json.dumps({"id": "ollama/llama3.2", "backend": "openai"}),
                "t": now,
            },
        )
        conn.execute(
            text("INSERT INTO calls (model_id, kind, ok, input_tokens, output_tokens, created_at) "
                 "VALUES ('ollama/llama3.2', 'generate', 1, 12, 34, :t)"),
            {"t": now},
        )  # fmt: skip
    engine.dispose()
    # Opening it through the normal path upgrades it on first use.
    monkeypatch.setenv("MODELATLAS_DATABASE_URL", url)
    assert store.get_registered("ollama/llama3.2") == {"id": "ollama/llama3.2", "backend": "openai"}
    [call] = store.recent_calls(model_id="ollama/llama3.2")
    assert (call.input_tokens, call.output_tokens) == (12, 34)
    assert db.current_revision(db.create(url)) == db.head_revision()
    store.record_result("run-1", "ollama/llama3.2", "qa.jsonl", "accuracy", 0.5, n=4)
    assert store.results_for_model("ollama/llama3.2")[0]["value"] == 0.5


def test_migration_matches_the_orm_table(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from modelatlas.store.schema import Base

    engine = db.create(f"sqlite:///{tmp_path / 'fresh.db'}")
    db.migrate(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "eval_results" in repr(d)] == []
