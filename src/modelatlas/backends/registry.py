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
from modelatlas.errors import ConfigError, UnknownBackendError

GROUP = "modelatlas.backends"

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
    module = importlib.import_module(module_name)
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(
            f"The backend {name!r} points at {target!r}, which is not a Backend subclass.",
            hint="Fix the entry point in the plugin's pyproject.toml.",
        )
    return cls
