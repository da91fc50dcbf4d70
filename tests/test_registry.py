"""The backend registry: entry points for built-ins and plugins, did-you-mean, missing extras."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from modelatlas.backends import Backend, get_backend_class, names, register
from modelatlas.backends.base import require
from modelatlas.backends.echo import EchoBackend
from modelatlas.errors import MissingExtraError, UnknownBackendError


def test_builtins_come_through_the_entry_point_group():
    declared = {ep.name for ep in entry_points(group="modelatlas.backends")}
    assert {"llamacpp", "transformers", "openai", "echo"} <= declared
    assert {"llamacpp", "transformers", "openai", "echo"} <= set(names())
    assert get_backend_class("echo") is EchoBackend


def test_lookup_is_lazy_until_asked(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "modelatlas.backends.openai_compat", raising=False)
    get_backend_class.cache_clear()
    names()
    assert "modelatlas.backends.openai_compat" not in sys.modules


def test_misspelt_backend_gets_did_you_mean():
    with pytest.raises(UnknownBackendError) as info:
        get_backend_class("llamacp")
    assert "Did you mean 'llamacpp'?" in str(info.value)


def test_register_at_run_time():
    class Shouty(EchoBackend):
        name = "shouty"

    register("shouty", Shouty)
    assert get_backend_class("shouty") is Shouty
    assert issubclass(Shouty, Backend)


def test_missing_optional_dependency_names_the_pip_command():
    with pytest.raises(MissingExtraError) as info:
        require("modelatlas_no_such_package", extra="local", package="no-such-package")
    assert "pip install 'modelatlas[local]'" in str(info.value)
    assert "no-such-package" in str(info.value)
