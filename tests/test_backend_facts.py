"""Backends declare their facts; the code above them asks instead of comparing names."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modelatlas.backends import BackendFacts, facts, with_parallel
from modelatlas.backends.declared import CAPABILITIES
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src" / "modelatlas"
SMOLLM2 = "local/smollm2-135m-instruct"


def _bundled() -> ModelRecord:
    from modelatlas.catalog.bundled import resolve_bundled

    return resolve_bundled(SMOLLM2)


def test_the_bundled_llamacpp_model_shares_the_engine_and_batches():
    record = _bundled()
    declared = facts(record)
    assert record.backend == "llamacpp"
    assert declared.local and not declared.hosted
    assert declared.required_env == ()
    assert (declared.concurrency_key, declared.max_connections) == ("llamacpp-engine", 1)
    assert declared.batches and declared.parallel == 1
    assert declared.trainable and not declared.adapter
    assert declared.where is None
    batched = with_parallel(record, 4)
    assert batched.options["parallel"] == 4 and facts(batched).parallel == 4
    assert record.options.get("parallel") is None  # the original record is left as it was


def test_a_hosted_openai_model_needs_its_key_and_has_a_lane_of_its_own():
    record = ModelRecord(
        id="openai/gpt-4.1-mini",
        backend="openai",
        options={"model": "gpt-4.1-mini", "api_key_env": "OPENAI_API_KEY"},
    )
    declared = facts(record)
    assert declared.hosted and not declared.local
    assert declared.required_env == ("OPENAI_API_KEY",)
    assert declared.concurrency_key == "model:openai/gpt-4.1-mini" and declared.max_connections is None
    assert not declared.batches and not declared.trainable
    assert declared.where == "OpenAI"
    assert with_parallel(record, 4) is record
    assert facts(record.model_copy(update={"options": {"base_url": "http://h/v1"}})).where == "http://h/v1"
    assert facts(record.model_copy(update={"options": {"azure": True}})).where == "Azure OpenAI"
    assert facts(record.model_copy(update={"options": {}})).required_env == ()


def test_echo_and_transformers_models_run_here():
    echo = facts(ModelRecord(id="test/echo", backend="echo"))
    assert echo.local and not echo.hosted and not echo.trainable and echo.required_env == ()
    assert echo.concurrency_key == "model:test/echo"
    hf = ModelRecord(id="local/tiny-hf", backend="transformers", location="/models/tiny")
    assert facts(hf).local and facts(hf).trainable and not facts(hf).adapter
    tuned = hf.model_copy(update={"options": {"adapter": "/models/tiny-lora"}})
    assert facts(tuned).adapter


def test_an_unknown_backend_declares_nothing():
    record = ModelRecord(id="x/unknown", backend="no-such-backend")
    assert facts(record) == BackendFacts(concurrency_key="model:x/unknown")
    assert with_parallel(record, 3) is record


def test_the_runner_shares_a_lane_by_concurrency_key():
    from types import SimpleNamespace

    from modelatlas.evals.runner import _lanes

    local = _bundled()
    other_local = local.model_copy(update={"id": "local/other-gguf"})
    hosted = ModelRecord(id="openai/gpt-4.1-mini", backend="openai")
    models = {r.id: SimpleNamespace(record=r) for r in (local, other_local, hosted)}

    async def lanes():
        return _lanes(models, SimpleNamespace(concurrency=5))

    got = asyncio.run(lanes())
    assert got[local.id] is got[other_local.id]
    assert got[local.id]._value == 1
    assert got[hosted.id] is not got[local.id] and got[hosted.id]._value == 5


def test_asking_for_facts_imports_no_heavy_dependency():
    code = (
        "import sys\n"
        "from modelatlas.backends import facts\n"
        "from modelatlas.catalog.records import ModelRecord\n"
        "for b in ('llamacpp', 'transformers', 'openai', 'echo'):\n"
        "    facts(ModelRecord(id='a/b', backend=b))\n"
        "print(sorted(m for m in ('llama_cpp', 'torch', 'transformers', 'openai') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_backend_name_checks_above_the_backends():
    """No code outside backends/ compares a backend's name or reads a record's raw options
    (issue 12, item 2): it asks the backend's declared facts, or its Options model."""
    pattern = re.compile(
        r"backend ==|\.backend in|\.backend !=|\.backend not in|record\.options\.get|record\.options\["
    )
    hits = [
        f"{path.relative_to(SRC)}:{n}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] != "backends"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


def test_backends_declare_what_they_can_do():
    record = _bundled()
    declared = facts(record)
    assert declared.capabilities == {
        "generate",
        "stream",
        "embeddings",
        "loglikelihood",
        "token_logprobs",
        "structured_output",
    }
    assert declared.can("token_logprobs") and not declared.can("transcription")
    assert declared.accepts == {"text"} and declared.outputs == {"text", "embedding"}
    assert declared.file_format == "gguf"
    on_disk = Path(record.location).stat().st_size
    assert declared.memory_bytes == (int(record.memory_gb * 2**30) if record.memory_gb else on_disk)
    hosted = facts(ModelRecord(id="openai/gpt-4.1-mini", backend="openai"))
    assert hosted.capabilities == {"generate", "stream", "embeddings"} and hosted.memory_bytes == 0
    assert not hosted.can("loglikelihood")
    assert set(CAPABILITIES) >= declared.capabilities | hosted.capabilities


def test_an_embedding_record_only_makes_vectors():
    from modelatlas.catalog.bundled import resolve_bundled

    minilm = facts(resolve_bundled("local/all-minilm-l6-v2"))
    assert minilm.capabilities == {"embeddings"} and minilm.outputs == {"embedding"}
    assert minilm.file_format == "huggingface" and not minilm.can("generate")
    echo = facts(ModelRecord(id="test/vectors", backend="echo", mode="embedding"))
    assert echo.capabilities == {"embeddings"}


def test_the_old_flags_follow_the_capabilities_and_the_other_way_round():
    from modelatlas.backends.echo import EchoBackend
    from modelatlas.backends.llamacpp import LlamaCppBackend
    from modelatlas.backends.openai_compat import OpenAIBackend

    assert LlamaCppBackend.has_token_logprobs and LlamaCppBackend.has_logprobs and LlamaCppBackend.can_embed
    assert OpenAIBackend.can_embed and not OpenAIBackend.has_logprobs and OpenAIBackend.can_stream
    assert EchoBackend.modalities == ("text",)

    class OldStyle(EchoBackend):  # a plugin written against the flags
        has_logprobs = False
        can_stream = False
        modalities = ("text", "image")

    assert OldStyle.capabilities == {"generate", "embeddings"}
    assert OldStyle.accepts == {"text", "image"}
    old = OldStyle.facts(ModelRecord(id="test/old", backend="echo"))
    assert not old.can("loglikelihood") and not old.can("stream") and old.accepts == {"text", "image"}

    class NewStyle(EchoBackend):
        capabilities = frozenset({"generate", "transcription"})

    assert not NewStyle.can_stream and not NewStyle.can_embed and not NewStyle.has_logprobs


def test_options_are_read_through_the_backends_options_model():
    from modelatlas.backends.llamacpp import LlamaCppBackend
    from modelatlas.backends.openai_compat import OpenAIBackend

    # A bad option does not take the facts with it: the others still count; loading names it.
    odd = ModelRecord(id="local/odd", backend="llamacpp", options={"parallel": "many", "n_ctx": 512, "x": 1})
    assert LlamaCppBackend.options_of(odd).n_ctx == 512 and facts(odd).parallel == 1
    assert OpenAIBackend.options_for(base_url="http://h/v1", model="m", api_key_env=None, azure=False) == {
        "base_url": "http://h/v1",
        "model": "m",
    }
    with pytest.raises(ConfigError, match="context_length"):
        OpenAIBackend.options_for(context_length=0)
    # What a fine-tune's record carries (strategies/finetune/train.py).
    from modelatlas.backends.hf import TransformersBackend

    assert TransformersBackend.options_for(adapter="/a/lora") == {"adapter": "/a/lora"}


def test_azure_needs_an_endpoint_from_the_record_or_the_environment(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    options = {"azure": True, "api_key_env": "AZURE_OPENAI_API_KEY", "deployment": "gpt-4o"}
    record = ModelRecord(id="azure/gpt-4o", backend="openai", options=options)
    declared = facts(record)
    assert declared.required_env == ("AZURE_OPENAI_API_KEY",)
    assert declared.config_env == ("AZURE_OPENAI_ENDPOINT",)
    assert declared.missing_env() == ["AZURE_OPENAI_ENDPOINT"]
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    assert declared.missing_env() == []
    named = record.model_copy(update={"options": {**options, "azure_endpoint": "https://e"}})
    assert facts(named).config_env == ()


def test_the_catalog_marks_hosted_records_runnable_from_the_declared_environment(monkeypatch):
    from modelatlas.catalog.catalog import _with_runnable

    record = ModelRecord(
        id="openai/gpt-4.1-mini", backend="openai", options={"api_key_env": "H_TEST_OPENAI_KEY"}
    )
    monkeypatch.delenv("H_TEST_OPENAI_KEY", raising=False)
    assert not _with_runnable(record).runnable
    monkeypatch.setenv("H_TEST_OPENAI_KEY", "sk-test")
    assert _with_runnable(record).runnable
    assert not _with_runnable(ModelRecord(id="x/no-backend")).runnable


def test_catalog_sources_build_options_with_the_backends_constructor():
    from modelatlas.catalog.user import endpoint_record

    record = endpoint_record("acme/m1", base_url="http://127.0.0.1:9/v1", remote_name="m-1", context_length=8)
    assert record.options == {"base_url": "http://127.0.0.1:9/v1", "model": "m-1", "context_length": 8}
    azure = endpoint_record("azure/gpt-4o", deployment="gpt-4o")
    assert azure.options == {"azure": True, "api_key_env": "AZURE_OPENAI_API_KEY", "deployment": "gpt-4o"}
    with pytest.raises(ConfigError, match="context_length"):
        endpoint_record("acme/m2", base_url="http://127.0.0.1:9/v1", context_length=0)


def test_serve_refuses_text_from_a_model_that_declares_only_vectors():
    from modelatlas.errors import InvalidRequestError
    from modelatlas.serve.models import ServedModels, memory_need

    vectors = ModelRecord(id="test/vectors", backend="echo", mode="embedding")
    tuned_for_vectors = ModelRecord(
        id="local/tiny-st", backend="transformers", location="/models/st", options={"task": "embedding"}
    )
    served = ServedModels([vectors, tuned_for_vectors], memory_budget_gb=1.0)
    for record in (vectors, tuned_for_vectors):
        with pytest.raises(InvalidRequestError, match="embedding model"):
            asyncio.run(served.get(record.id, mode="text"))
    # The memory need comes from the weights' size the backend declares.
    record = _bundled()
    alone = memory_need(record)
    assert alone > facts(record).memory_bytes / 2**30 > 0
