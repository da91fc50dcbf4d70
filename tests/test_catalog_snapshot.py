"""The models.dev catalog: reading the TOML tree, mapping to records, the snapshot file, sync."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from modelatlas.catalog.modelsdev import read_tree, to_records
from modelatlas.catalog.snapshot import bundled_path, load_snapshot, peek, user_path, write_snapshot
from modelatlas.catalog.sync import newest_date, sync
from modelatlas.errors import CatalogDataError, CatalogSyncError
from tests.servers import free_port

FIXTURE = Path(__file__).parent / "data" / "modelsdev"


@pytest.fixture(scope="module")
def api() -> dict:
    return read_tree(FIXTURE)


@pytest.fixture(scope="module")
def records(api) -> dict:
    return {r.id: r for r in to_records(api)}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A real HTTP server on 127.0.0.1 serving files from a folder; yields (folder, base URL)."""
    folder = tmp_path / "www"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_read_tree_is_the_api_json_shape(api):
    assert set(api) == {"closedco", "hostco", "openai"}
    hostco = api["hostco"]
    assert hostco["id"] == "hostco" and hostco["name"] == "HostCo"
    assert hostco["env"] == ["HOSTCO_API_KEY"] and hostco["api"] == "https://api.hostco.example/v1"
    names = {"acme/acme-7b-instruct", "acme-7b-base", "~acme/acme-latest", "acme-coder", "acme-embed-small"}
    assert set(hostco["models"]) == names
    assert hostco["models"]["acme/acme-7b-instruct"]["id"] == "acme/acme-7b-instruct"
    json.dumps(api)  # plain JSON data, as api.json is


def test_base_model_inheritance_overrides_and_omissions(api):
    model = api["hostco"]["models"]["acme/acme-7b-instruct"]
    assert model["license"] == "Apache-2.0" and model["open_weights"] is True
    assert model["weights"] == [{"label": "Hugging Face", "url": "https://huggingface.co/acme/Acme-7B"}]
    assert [b["name"] for b in model["benchmarks"]] == ["MMLU", "Terminal-Bench 2.1"]
    assert model["name"] == "Acme 7B Instruct" and model["last_updated"] == "2026-03-01"  # own fields win
    assert model["limit"] == {"context": 32_768, "output": 8_192}  # deep merge; limit.input omitted
    assert "structured_output" not in model and "base_model_omit" not in model
    assert model["cost"] == {"input": 0.10, "output": 0.20}
    # The omissions did not leak into the base: a sibling that omits nothing keeps everything.
    sibling = api["hostco"]["models"]["acme-7b-base"]
    assert sibling["structured_output"] is True and sibling["limit"]["input"] == 30_000


def test_a_missing_base_model_keeps_the_models_own_fields(api):
    model = api["hostco"]["models"]["~acme/acme-latest"]
    assert model["base_model"] == "acme/acme-99b" and model["name"] == "Acme (latest)"
    assert "license" not in model and "benchmarks" not in model


def test_link_files_are_followed_and_dangling_ones_skipped(api):
    assert "gone" not in api["hostco"]["models"]
    mirror = api["closedco"]["models"]["mirror"]
    assert mirror["license"] == "Apache-2.0" and mirror["limit"]["output"] == 8_192


def test_malformed_toml_names_the_file_and_line(tmp_path):
    tree = tmp_path / "models.dev"
    shutil.copytree(FIXTURE, tree)
    bad = tree / "providers" / "openai" / "models" / "broken.toml"
    bad.write_text('name = "Broken"\nrelease_date = \n')
    with pytest.raises(CatalogDataError) as info:
        read_tree(tree)
    assert str(bad) in str(info.value) and "line 2" in str(info.value)
    assert info.value.exit_code == 2 and isinstance(info.value, ValueError)


def test_a_malformed_field_names_the_file_and_field(tmp_path):
    tree = tmp_path / "models.dev"
    shutil.copytree(FIXTURE, tree)
    bad = tree / "providers" / "openai" / "models" / "odd.toml"
    bad.write_text('base_model = "acme/acme-7b"\nbase_model_omit = "limit.input"\n')
    with pytest.raises(CatalogDataError, match="base_model_omit") as info:
        read_tree(tree)
    assert str(bad) in str(info.value)
    with pytest.raises(CatalogDataError, match="no providers/ folder"):
        read_tree(tree / "models")


def test_records_carry_the_inherited_facts(records):
    r = records["hostco/acme/acme-7b-instruct"]
    assert (r.name, r.provider, r.family, r.mode) == ("Acme 7B Instruct", "hostco", "acme", "chat")
    assert r.tasks == ["chat", "text-generation"]
    assert (r.license, r.open_weights, r.base_model) == ("Apache-2.0", True, "acme/acme-7b")
    assert (r.context_length, r.max_output, r.knowledge_cutoff) == (32_768, 8_192, "2025-06")
    assert (r.price.input, r.price.output, r.price.cache_read) == (0.10, 0.20, None)
    assert r.capabilities.tool_calling is True and r.capabilities.structured_output is None
    assert [(w.label, w.url) for w in r.weights] == [("Hugging Face", "https://huggingface.co/acme/Acme-7B")]
    assert [(b.name, b.score, b.metric) for b in r.benchmarks] == [
        ("MMLU", 61.5, "accuracy"),
        ("Terminal-Bench 2.1 (Terminus-2)", 12.0, "percent"),
    ]
    assert [x.url for x in r.links] == [
        "https://docs.hostco.example/models",
        "https://huggingface.co/acme/Acme-7B",
    ]
    assert (r.architecture, r.hosting, r.source, r.runnable) == ("unknown", "hosted", "models.dev", False)


def test_how_to_run_an_openai_compatible_provider(records):
    r = records["hostco/acme/acme-7b-instruct"]
    assert r.backend == "openai"
    assert r.options == {
        "base_url": "https://api.hostco.example/v1",
        "model": "acme/acme-7b-instruct",
        "api_key_env": "HOSTCO_API_KEY",
    }
    gpt = records["openai/gpt-4.1-mini"]
    assert gpt.options == {"model": "gpt-4.1-mini", "api_key_env": "OPENAI_API_KEY"}
    assert (gpt.price.input, gpt.price.output, gpt.price.cache_read) == (0.4, 1.6, 0.1)
    assert gpt.tasks == ["chat", "text-generation", "multimodal"]


def test_models_we_do_not_know_how_to_run_have_no_backend(records):
    assert records["closedco/closed-image-1"].backend is None
    assert records["closedco/closed-image-1"].options == {}
    coder = records["hostco/acme-coder"]  # a [provider] override sends it to another SDK
    assert coder.backend is None and coder.tasks == ["chat", "text-generation", "code", "multimodal"]


def test_azure_models_run_through_azure_openai():
    azure = {"id": "azure", "env": ["AZURE_RESOURCE_NAME", "AZURE_API_KEY"], "npm": "@ai-sdk/azure"}
    [r] = to_records({"azure": {**azure, "models": {"gpt-4o": {"id": "gpt-4o", "name": "GPT-4o"}}}})
    assert r.id == "azure/gpt-4o" and r.backend == "openai"
    assert r.options == {"azure": True, "api_key_env": "AZURE_OPENAI_API_KEY", "deployment": "gpt-4o"}


def test_modes_and_tasks_come_from_the_data(records):
    embed = records["hostco/acme-embed-small"]
    assert (embed.mode, embed.tasks) == ("embedding", ["embeddings"])
    assert records["openai/whisper-1"].tasks == ["speech-recognition"]
    assert records["openai/tts-1"].tasks == ["text-to-speech"]
    assert records["closedco/closed-image-1"].tasks == ["image-generation", "multimodal"]


def test_ids_are_sanitised_and_unique(records):
    latest = records["hostco/acme/acme-latest"]  # '~' is not allowed in ids
    assert latest.options["model"] == "~acme/acme-latest"  # the provider still gets its own name
    assert latest.context_length is None and latest.max_output == 2_048  # context 0 means unknown
    twins = {"p": {"models": {"a~b": {}, "a b": {}, "a-b": {}}}}
    assert [r.id for r in to_records(twins)] == ["p/a-b", "p/a-b-2", "p/a-b-3"]


def test_a_record_that_fails_validation_names_the_model_and_field():
    api = {"hostco": {"models": {"m1": {"limit": {"context": "lots"}}}}}
    # the field as the source spells it (limit.context), not as the record does (context_length)
    with pytest.raises(CatalogDataError, match=r"hostco/m1: field limit\.context"):
        to_records(api)


def test_snapshot_round_trip(tmp_path, records):
    path = write_snapshot(tmp_path / "s" / "s.json.gz", records.values(), date="2026-03-15", source="t")
    loaded = load_snapshot(path)
    assert (loaded.date, loaded.source, loaded.path) == ("2026-03-15", "t", path)
    assert loaded.records == list(records.values())
    doc = json.loads(gzip.decompress(path.read_bytes()))
    assert (doc["format"], doc["count"]) == (1, len(records))
    assert peek(path)["date"] == "2026-03-15"
    assert [p.name for p in path.parent.iterdir()] == ["s.json.gz"]  # no temporary file left


def test_a_failed_write_leaves_the_old_snapshot_untouched(tmp_path, records):
    path = write_snapshot(tmp_path / "snapshot.json.gz", records.values(), date="2026-01-01", source="old")
    before = path.read_bytes()

    def failing():
        yield from list(records.values())[:2]
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_snapshot(path, failing(), date="2026-02-02", source="new")
    target = tmp_path / "a-folder"
    target.mkdir()
    with pytest.raises(OSError):
        write_snapshot(target, records.values(), date="2026-02-02", source="new")  # replace fails
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder", "snapshot.json.gz"]


def test_a_corrupt_snapshot_names_the_file(tmp_path):
    path = tmp_path / "snapshot.json.gz"
    path.write_bytes(gzip.compress(b'{"format": 1, "date": "x"'))
    with pytest.raises(CatalogDataError, match=str(path)):
        load_snapshot(path)


def test_the_shipped_snapshot():
    snapshot = load_snapshot()
    assert snapshot.path == bundled_path() and not user_path().exists()
    assert len(snapshot.records) >= 5_000 and len(snapshot.providers) >= 140
    ids = [r.id for r in snapshot.records]
    assert len(ids) == len(set(ids))
    by_id = {r.id: r for r in snapshot.records}
    gpt = by_id["openai/gpt-4.1-mini"]
    assert (gpt.price.input, gpt.price.output) == (0.4, 1.6) and gpt.backend == "openai"
    azure = [r for r in snapshot.records if r.provider == "azure"]
    assert len(azure) > 50 and any(r.options.get("azure") for r in azure)
    assert all(r.source == "models.dev" and not r.runnable for r in snapshot.records)
    assert any(r.mode == "embedding" for r in snapshot.records)
    assert any(r.benchmarks for r in snapshot.records) and any(r.weights for r in snapshot.records)


def test_sync_from_a_local_http_server(served, api):
    folder, base = served
    (folder / "api.json").write_text(json.dumps(api))
    snapshot = sync(f"{base}/api.json")
    assert snapshot.path == user_path() and user_path().is_file()
    assert snapshot.date == newest_date(api) == "2026-04-02"
    loaded = load_snapshot()
    assert loaded.path == user_path() and loaded.source == f"{base}/api.json"
    assert {r.id for r in loaded.records} == {r.id for r in to_records(api)}


def test_sync_from_a_checkout_and_from_a_json_file(tmp_path, api):
    assert len(sync(str(FIXTURE)).records) == len(to_records(api))
    file = tmp_path / "api.json"
    file.write_text(json.dumps({"openai": api["openai"]}))
    assert {r.provider for r in sync(str(file)).records} == {"openai"}
    assert {r.provider for r in load_snapshot().records} == {"openai"}


def test_sync_from_an_unreachable_url_keeps_the_previous_snapshot():
    sync(str(FIXTURE))
    before = user_path().read_bytes()
    url = f"http://127.0.0.1:{free_port()}/api.json"  # nothing listens there
    with pytest.raises(CatalogSyncError) as info:
        sync(url)
    message = str(info.value)
    assert f"could not be fetched from {url}" in message
    assert "previous snapshot" in message and "2026-04-02" in message
    assert "modelatlas catalog sync --source PATH" in message
    assert info.value.code == "catalog_sync_failed" and info.value.exit_code == 1
    assert user_path().read_bytes() == before


def test_sync_http_error_keeps_the_bundled_snapshot(served):
    _, base = served
    with pytest.raises(CatalogSyncError, match="HTTP 404"):
        sync(f"{base}/missing.json")
    assert not user_path().exists()


def test_sync_malformed_json_names_the_source(served, tmp_path):
    folder, base = served
    (folder / "api.json").write_text('{"openai": {"models": ')
    with pytest.raises(CatalogDataError, match=rf"{base}/api.json is not valid JSON: .* line 1, column 23"):
        sync(f"{base}/api.json")
    local = tmp_path / "bad.json"
    local.write_text("[1, 2,]")
    with pytest.raises(CatalogDataError, match=str(local)):
        sync(str(local))
    assert not user_path().exists()


def test_sync_invalid_record_names_source_provider_model_and_field(tmp_path):
    file = tmp_path / "api.json"
    file.write_text(json.dumps({"hostco": {"models": {"m1": {"cost": {"input": "cheap"}}}}}))
    with pytest.raises(CatalogDataError, match=r"api.json: hostco/m1: field cost\.input"):
        sync(str(file))
    assert not user_path().exists()
