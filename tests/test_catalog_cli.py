"""`modelatlas catalog`: search, show, collections, add (endpoint and YAML), through the CLI."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from modelatlas.cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_search_json_prints_records_with_the_facet_names():
    result = invoke("catalog", "search", "--task", "embeddings", "--local", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    minilm = next(r for r in found if r["id"] == "local/all-minilm-l6-v2")
    for facet in ("tasks", "architecture", "open_weights", "license", "hosting", "parameters", "runnable"):
        assert facet in minilm
    assert all(r["hosting"] == "local" and "embeddings" in r["tasks"] for r in found)


def test_search_table_and_filters():
    result = invoke("catalog", "search", "gpt 4.1 mini", "--provider", "openai", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "openai/gpt-4.1-mini" in result.output
    cheap = json.loads(
        invoke(
            "catalog",
            "search",
            "--max-price",
            "0.5",
            "--min-context",
            "100000",
            "--hosted",
            "--sort",
            "price",
            "--json",
            "--limit",
            "500",
        ).output
    )
    assert cheap and all(r["price"]["input"] <= 0.5 and r["context_length"] >= 100000 for r in cheap)
    assert [r["price"]["input"] for r in cheap] == sorted(r["price"]["input"] for r in cheap)


def test_bad_facet_value_exits_2_and_lists_valid_values():
    result = invoke("catalog", "search", "--task", "chit-chat")
    assert result.exit_code == 2
    assert "Valid values" in result.output and "embeddings" in result.output
    both = invoke("catalog", "search", "--open", "--proprietary")
    assert both.exit_code == 2


def test_show_card_formats():
    text = invoke("catalog", "show", "local/smollm2-135m-instruct")
    assert text.exit_code == 0, text.output
    assert "apache-2.0" in text.output and "modelatlas run" in text.output
    card = json.loads(invoke("catalog", "show", "openai/gpt-4.1-mini", "--format", "json").output)
    assert card["id"] == "openai/gpt-4.1-mini"
    hf = invoke("catalog", "show", "local/smollm2-135m-instruct", "--format", "hf").output
    front = yaml.safe_load(hf.split("---")[1])
    assert front["license"] == "apache-2.0"


def test_show_unknown_id_says_did_you_mean():
    result = invoke("catalog", "show", "openai/gpt-4.1-mni")
    assert result.exit_code == 2
    assert "Did you mean" in result.output and "openai/gpt-4.1-mini" in result.output


def test_collections_list_curated_and_providers():
    result = json.loads(invoke("catalog", "collections", "--json").output)
    names = {c["name"]: c["count"] for c in result}
    assert names["Azure OpenAI"] > 0 and names["Runs on this machine"] >= 3 and "openai" in names


def test_add_endpoint_registers_every_model_of_a_real_server(llama_url):
    result = invoke("catalog", "add", "--endpoint", llama_url.removesuffix("/v1"), "--provider", "testsrv")
    assert result.exit_code == 0, result.output
    record = json.loads(invoke("catalog", "show", "testsrv/smollm2", "--format", "json").output)
    assert record["runnable"] is True and record["backend"] == "openai"
    assert record["options"]["base_url"] == llama_url
    run = invoke("run", "testsrv/smollm2", "Say hi.", "--max-tokens", "8", "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["text"].strip()


def test_add_endpoint_that_is_down_fails_clearly():
    from tests.servers import free_port

    result = invoke("catalog", "add", "--endpoint", f"http://127.0.0.1:{free_port()}/v1")
    assert result.exit_code == 1
    assert "Could not reach" in result.output


def test_add_yaml_file(tmp_path):
    good = tmp_path / "models.yaml"
    good.write_text(
        "models:\n  - id: team/summariser\n    backend: openai\n    options:\n"
        "      base_url: http://127.0.0.1:9/v1\n    context_length: 4096\n"
    )
    result = invoke("catalog", "add", str(good))
    assert result.exit_code == 0, result.output
    listed = json.loads(invoke("models", "list", "--json").output)
    assert "team/summariser" in {m["id"] for m in listed}


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - id: team/x\n    backend: [unclosed\n")
    result = invoke("catalog", "add", str(bad))
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "line" in result.output


def test_yaml_with_a_bad_field_names_it(tmp_path):
    bad = tmp_path / "fields.yaml"
    bad.write_text("- id: team/x\n  backend: openai\n  context_length: lots\n")
    result = invoke("catalog", "add", str(bad))
    assert result.exit_code == 2
    assert "model #1" in result.output and "context_length" in result.output
