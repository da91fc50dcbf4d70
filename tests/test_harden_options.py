"""Call-time generation options are validated like construction-time ones (issue 11, item 11).

``Model.generate(..., max_tokns=2)`` and ``temperature=-5`` used to reach the backend, because
the overrides were applied with ``model_copy(update=...)``, which skips validation. Through the
real Model wrapper (echo backend and the bundled SmolLM2): a bad option fails before the
backend is called, before the cache is read or written and before the call log is written.
"""

from __future__ import annotations

import pytest

from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import InvalidRequestError
from modelatlas.loading import load_model
from modelatlas.types import GenerationParams, Message
from tests.conftest import run


def cached_rows() -> int:
    from sqlalchemy import func, select

    from modelatlas.store.db import session
    from modelatlas.store.schema import CachedResponse

    with session() as s:
        return s.scalar(select(func.count()).select_from(CachedResponse))


def logged(model) -> list:
    calls: list = []
    model.on_call = calls.append
    return calls


@pytest.fixture
def echo():
    return load_model(ModelRecord(id="test/echo", backend="echo"), cache=True)


def test_misspelt_option_fails_before_the_backend_with_did_you_mean(echo):
    calls = logged(echo)
    with pytest.raises(InvalidRequestError) as info:
        run(echo.generate([Message.user("one two three")], max_tokns=2))
    assert "max_tokns" in info.value.message
    assert "Did you mean 'max_tokens'" in info.value.hint
    assert echo.backend.calls == 0 and calls == [] and cached_rows() == 0
    assert info.value.exit_code == 2 and info.value.http_status == 400


def test_out_of_range_value_fails_before_the_backend(echo):
    calls = logged(echo)
    with pytest.raises(InvalidRequestError) as info:
        run(echo.generate("one two", temperature=-5))
    assert "temperature" in info.value.message and "-5" in info.value.message
    assert echo.backend.calls == 0 and calls == [] and cached_rows() == 0


def test_stream_refuses_bad_options_at_the_call(echo):
    calls = logged(echo)
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        echo.stream("one two", max_tokens=0)  # raised here, not at the first chunk
    with pytest.raises(InvalidRequestError, match="top_k"):
        echo.stream("one two", top_k=5)
    assert echo.backend.calls == 0 and calls == []


def test_valid_overrides_still_apply_and_merge_with_params(echo):
    calls = logged(echo)
    out = run(echo.generate("a b c d e", GenerationParams(max_tokens=4), max_tokens=2, temperature=0.5))
    assert out.text == "a b" and out.finish_reason == "length"
    assert echo.backend.calls == 1 and len(calls) == 1 and cached_rows() == 1  # the checks above can fail


def test_smollm2_refuses_bad_options_before_loading_or_generating(smollm2_path):
    model = load_model(
        ModelRecord(id="local/smollm2-135m-instruct", backend="llamacpp", location=smollm2_path), cache=True
    )
    calls = logged(model)
    for bad in ({"max_tokns": 2}, {"temperature": -5}, {"top_p": 0}, {"seed": "x"}):
        with pytest.raises(InvalidRequestError) as info:
            run(model.generate([Message.user("Say hi")], **bad))
        assert next(iter(bad)) in info.value.message
    with pytest.raises(InvalidRequestError, match="Did you mean 'max_tokens'"):
        run(model.generate("hi", max_tokns=2))
    assert not model._loaded and calls == [] and cached_rows() == 0
    done = run(model.generate([Message.user("Say hi")], max_tokens=2))
    assert done.usage.output_tokens >= 1 and len(calls) == 1 and cached_rows() == 1
