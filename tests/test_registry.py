"""The generic registry (modelatlas.registry) and the backend registry built on it: entry points
for built-ins and plugins, did-you-mean, missing extras."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from modelatlas.backends import Backend, get_backend_class, names, register
from modelatlas.backends.base import require
from modelatlas.backends.echo import EchoBackend
from modelatlas.backends.registry import BACKENDS
from modelatlas.errors import (
    ConfigError,
    MissingExtraError,
    UnknownBackendError,
    UnknownMetricError,
    UnknownNameError,
)
from modelatlas.evals.metrics.registry import METRICS
from modelatlas.evals.metrics.text import ExactMatch
from modelatlas.registry import Registry
from modelatlas.registry import require as core_require


def test_builtins_come_through_the_entry_point_group():
    declared = {ep.name for ep in entry_points(group="modelatlas.backends")}
    assert {"llamacpp", "transformers", "openai", "echo"} <= declared
    assert {"llamacpp", "transformers", "openai", "echo"} <= set(names())
    assert get_backend_class("echo") is EchoBackend


def test_lookup_is_lazy_until_asked(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "modelatlas.backends.openai_compat", raising=False)
    BACKENDS.clear()  # was get_backend_class.cache_clear(), before the generic registry
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


# -- the generic Registry[T] ---------------------------------------------------------------------


def metric_classes() -> Registry[type]:
    """A registry of its own over the installed package's real metric entry points."""
    return Registry(
        "metric", "modelatlas.metrics", check=lambda found: isinstance(found, type), expected="a class"
    )


def test_a_real_entry_point_of_the_installed_package_loads_lazily(monkeypatch):
    import sys

    registry = metric_classes()
    declared = {ep.name: ep.value for ep in entry_points(group="modelatlas.metrics")}
    assert registry.entry_points() == declared and "exact_match" in registry
    monkeypatch.delitem(sys.modules, "modelatlas.evals.metrics.speech", raising=False)
    assert "wer" in registry.names()
    assert "modelatlas.evals.metrics.speech" not in sys.modules  # listing imports nothing
    assert registry.require("exact_match") is ExactMatch
    assert registry.require("exact_match") is registry.require("exact_match")


def test_a_miss_says_did_you_mean_and_lists_the_known_names():
    with pytest.raises(UnknownNameError) as info:
        metric_classes().require("exact_mach")
    error = info.value
    assert isinstance(error, LookupError) and error.suggestions == ["exact_match"]
    assert str(error).startswith("Unknown metric 'exact_mach'.\nDid you mean 'exact_match'? Known metrics: ")
    # The two registries built on it raise their own kind, with the same message.
    with pytest.raises(UnknownBackendError, match="Did you mean 'echo'\\? Known backends: "):
        BACKENDS.require("ecko")
    with pytest.raises(UnknownMetricError, match="Did you mean 'exact_match'") as info:
        METRICS.require("exact_mach")
    assert isinstance(info.value, ConfigError)  # as the metric lookup raised before


def test_a_missing_extra_gives_the_pip_command():
    registry = Registry(
        "thing", "modelatlas.no_such_group", check=callable, expected="callable", extras={"a": "rag"}
    )
    registry.register("a", "modelatlas_no_such_module:Thing")
    registry.register("b", "modelatlas_no_such_module:Thing")
    with pytest.raises(MissingExtraError) as info:
        registry.require("a")  # the extra that installs it is known
    assert "'modelatlas_no_such_module'" in str(info.value) and "pip install 'modelatlas[rag]'" in str(
        info.value
    )
    with pytest.raises(ConfigError, match="pip install modelatlas_no_such_module"):
        registry.require("b")  # a plugin's own dependency: the package itself


def test_a_module_that_imports_a_missing_dependency_names_the_dependency(tmp_path, monkeypatch):
    (tmp_path / "plugin_needing_dep.py").write_text("import modelatlas_missing_dep\nThing = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry(
        "thing", "modelatlas.no_such_group", check=callable, expected="callable", extras={"p": "eval"}
    )
    registry.register("p", "plugin_needing_dep:Thing")
    with pytest.raises(MissingExtraError, match="'modelatlas_missing_dep'"):
        registry.require("p")
    # The optional-import helper lets another module's ImportError through, unrenamed.
    with pytest.raises(ModuleNotFoundError, match="modelatlas_missing_dep"):
        core_require("plugin_needing_dep", extra="eval")
    assert require is core_require  # backends.base re-exports the one helper


def test_a_wrong_kind_or_a_dangling_path_is_a_config_error():
    registry = Registry("thing", "modelatlas.no_such_group", check=callable, expected="callable")
    registry.register("number", "math:pi")
    registry.register("nothing", "math:no_such_attr")
    registry.register("direct", 42)
    with pytest.raises(ConfigError, match="'math:pi', which is not callable"):
        registry.require("number")
    with pytest.raises(ConfigError, match="does not exist"):
        registry.require("nothing")
    with pytest.raises(ConfigError, match="not callable"):
        registry.require("direct")


def test_register_wins_over_an_entry_point_and_replaces_what_was_loaded():
    registry = metric_classes()
    assert registry.require("f1").__name__ == "TokenF1"
    registry.register("f1", ExactMatch)
    assert registry.require("f1") is ExactMatch
    registry.register("f1", "modelatlas.evals.metrics.text:Contains")
    assert registry.require("f1").__name__ == "Contains"
    assert registry.names().count("f1") == 1
