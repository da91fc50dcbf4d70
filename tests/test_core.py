"""Settings, errors and value types."""

from __future__ import annotations

import pytest

from modelatlas import errors
from modelatlas.config import settings
from modelatlas.types import GenerationParams, Message, Usage


def test_settings_follow_the_environment(home, monkeypatch, tmp_path):
    conf = settings()
    assert conf.home == home
    assert conf.database_url == f"sqlite:///{home / 'modelatlas.db'}"
    monkeypatch.setenv("MODELATLAS_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    monkeypatch.setenv("MODELATLAS_MODEL_PATHS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    conf = settings()
    assert conf.database_url.endswith("other.db")
    assert conf.model_paths == (tmp_path / "a", tmp_path / "b")


def test_bad_number_in_environment_says_what_to_set(monkeypatch):
    monkeypatch.setenv("MODELATLAS_MAX_CONCURRENCY", "lots")
    with pytest.raises(errors.ConfigError, match="MODELATLAS_MAX_CONCURRENCY='lots' is not a whole number"):
        settings()


def test_unknown_model_suggests_close_names():
    exc = errors.UnknownModelError("local/smolm2", ["local/smollm2-135m-instruct", "openai/gpt-4.1"])
    assert exc.suggestions == ["local/smollm2-135m-instruct"]
    assert "Did you mean 'local/smollm2-135m-instruct'?" in str(exc)
    assert isinstance(exc, LookupError) and exc.exit_code == 2 and exc.http_status == 404


def test_unknown_model_without_neighbours_points_to_the_list():
    exc = errors.UnknownModelError("zzz/qqq", ["local/smollm2-135m-instruct"])
    assert exc.suggestions == []
    assert "modelatlas models list" in str(exc)


def test_errors_inherit_matching_builtins():
    assert issubclass(errors.ModelFileError, FileNotFoundError)
    assert issubclass(errors.MissingExtraError, ImportError)
    assert issubclass(errors.ContextLengthExceededError, ValueError)
    missing = errors.MissingExtraError("llama-cpp-python", "local")
    assert "pip install 'modelatlas[local]'" in str(missing)
    key = errors.MissingAPIKeyError("OPENAI_API_KEY", "openai/gpt-4.1")
    assert "OPENAI_API_KEY" in str(key) and "export OPENAI_API_KEY" in str(key)


def test_context_error_gives_the_numbers():
    exc = errors.ContextLengthExceededError("m/x", 900, 200, 1024)
    assert exc.prompt_tokens == 900 and exc.context_length == 1024
    # OpenAI's wording (what LiteLLM's context-window fallbacks look for), with the numbers
    assert "maximum context length is 1024 tokens" in str(exc)
    assert "resulted in 1100 tokens (900 in the messages, 200 in the completion)" in str(exc)


def test_generation_params_reject_bad_values():
    with pytest.raises(ValueError):
        GenerationParams(max_tokens=0)
    with pytest.raises(ValueError):
        GenerationParams(temperature=3.0)
    with pytest.raises(ValueError):
        GenerationParams(nonsense=1)


def test_usage_adds_up():
    total = Usage(input_tokens=3, output_tokens=4, cost_usd=0.5) + Usage(input_tokens=1, output_tokens=1)
    assert (total.input_tokens, total.output_tokens, total.total_tokens, total.cost_usd) == (4, 5, 9, 0.5)


def test_messages_are_validated():
    assert Message.user("hi").role == "user"
    with pytest.raises(ValueError):
        Message(role="robot", content="x")
