"""The backend registry: a :class:`modelatlas.registry.Registry` of Backend classes.

Backends are found through the entry-point group ``modelatlas.backends``; the built-in ones are
declared there too, in modelatlas' own ``pyproject.toml``, so they take the same path as a
plugin. An entry point names ``"module:Class"`` and is imported only when first used. The
functions below are the names callers used before the generic registry; they stay thin.
"""

from __future__ import annotations

from modelatlas.backends.base import Backend
from modelatlas.errors import UnknownBackendError
from modelatlas.registry import Registry

GROUP = "modelatlas.backends"

# The extra of modelatlas that installs what each built-in backend imports.
# (openai and echo need only modelatlas' own dependencies.)
EXTRAS = {"llamacpp": "local", "transformers": "finetune", "whisper": "speech", "diffusers": "vision"}


def _is_backend(found: object) -> bool:
    return isinstance(found, type) and issubclass(found, Backend)


BACKENDS: Registry[type[Backend]] = Registry(
    "backend",
    GROUP,
    check=_is_backend,
    expected="a Backend subclass",
    extras=EXTRAS,
    unknown=UnknownBackendError,
)


def names() -> list[str]:
    """Every registered backend name."""
    return BACKENDS.names()


def register(name: str, target: str | type[Backend]) -> None:
    """Register a backend by name, as a class or a lazy ``"module:Class"`` path."""
    BACKENDS.register(name, target)


def get_backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name``; a miss answers with "did you mean"."""
    return BACKENDS.require(name)
