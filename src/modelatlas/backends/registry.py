"""The backend registry.

Backends are found through the entry-point group ``modelatlas.backends``; the built-in ones are
declared there too, in modelatlas' own ``pyproject.toml``, so they take the same path as a
plugin. An entry point names ``"module:Class"`` and is imported only when first used.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from modelatlas.backends.base import Backend
from modelatlas.errors import ConfigError, MissingExtraError, ModelAtlasError, UnknownBackendError

GROUP = "modelatlas.backends"

# The extra of modelatlas that installs what each built-in backend imports.
# (openai and echo need only modelatlas' own dependencies.)
EXTRAS = {"llamacpp": "local", "transformers": "finetune"}

# Registered at run time with register(); name -> "module:Class" or a class.
_extra: dict[str, str | type[Backend]] = {}


@cache
def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def names() -> list[str]:
    """Every registered backend name."""
    return sorted(set(_entry_points()) | set(_extra))


def register(name: str, target: str | type[Backend]) -> None:
    """Register a backend by name, as a class or a lazy ``"module:Class"`` path."""
    _extra[name] = target
    get_backend_class.cache_clear()


@cache
def get_backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name``; a miss answers with "did you mean"."""
    target = _extra.get(name) or _entry_points().get(name)
    if target is None:
        raise UnknownBackendError(name, names())
    if isinstance(target, type):
        return target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _missing(name, module_name, exc) from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(
            f"The backend {name!r} points at {target!r}, which is not a Backend subclass.",
            hint="Fix the entry point in the plugin's pyproject.toml.",
        )
    return cls


def _missing(name: str, module_name: str, exc: ImportError) -> ModelAtlasError:
    """The error for a backend whose module (or one of its dependencies) does not import."""
    package = (exc.name or module_name).split(".")[0]
    if package == "modelatlas":  # a module of our own that fails to import: a broken install
        return ConfigError(
            f"The backend {name!r} cannot be loaded: {exc}.",
            hint="Reinstall modelatlas: pip install --force-reinstall modelatlas",
        )
    extra = EXTRAS.get(name)
    if extra is not None:
        return MissingExtraError(package, extra)
    return ConfigError(
        f"The backend {name!r} needs the Python package {package!r}, which is not installed.",
        hint=f"Install it with: pip install {package}",
    )
