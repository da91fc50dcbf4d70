"""One registry for the things modelatlas finds by name: backends, metrics, and what comes next.

An entry is a lazy ``"module:attr"`` path, imported the first time the name is asked for, or the
object itself. Entries come from an entry-point group (modelatlas declares its built-ins in its
own ``pyproject.toml``, so they take the same path as a plugin's) and from :meth:`Registry.register`
at run time; a name registered at run time wins over an entry point of the same name.

:meth:`Registry.require` is the one lookup, and it has one meaning: the object, or an error that
says what to do. A name nobody registered raises the registry's "unknown" error with "did you
mean" (:func:`modelatlas.errors.suggest`) and the known names; an entry whose module needs a
package that is not installed raises :class:`MissingExtraError` with the ``pip install`` command;
an entry that imports but names the wrong kind of object raises :class:`ConfigError`.

:func:`require` is the matching helper for optional imports inside a module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Generic, TypeVar

from modelatlas.errors import ConfigError, MissingExtraError, ModelAtlasError, UnknownNameError

T = TypeVar("T")

UnknownError = Callable[[str, list[str]], ModelAtlasError]


def require(module: str, extra: str, package: str | None = None) -> ModuleType:
    """Import an optional dependency, or raise the error that names the pip command.

    ``package`` is the name pip knows it by when that differs from the module's
    (``llama-cpp-python`` for ``llama_cpp``). An ImportError raised for another module (one the
    dependency itself imports) is not ours to rename, and propagates as it is."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingExtraError(package or module.split(".")[0], extra) from None


class Registry(Generic[T]):
    """Named entries of one kind, found lazily; see the module docstring.

    ``check`` says whether a loaded object is of the kind (``expected`` describes it for the
    error), ``extras`` names the modelatlas extra that installs what an entry imports, and
    ``unknown`` makes the error for a miss (an :class:`UnknownNameError` by default).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        *,
        check: Callable[[object], bool],
        expected: str,
        extras: Mapping[str, str] | None = None,
        unknown: UnknownError | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self._check = check
        self._expected = expected
        self._extras = dict(extras or {})
        self._unknown = unknown or (lambda name, known: UnknownNameError(kind, name, known))
        self._registered: dict[str, str | T] = {}
        self._points: dict[str, str] | None = None
        self._loaded: dict[str, T] = {}

    def entry_points(self) -> dict[str, str]:
        """The group's entry points, name -> ``"module:attr"`` (read once: a scan takes ~10 ms)."""
        if self._points is None:
            self._points = {ep.name: ep.value for ep in entry_points(group=self.group)}
        return self._points

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(set(self.entry_points()) | set(self._registered))

    def __contains__(self, name: object) -> bool:
        return name in self._registered or name in self.entry_points()

    def register(self, name: str, target: str | T) -> None:
        """Register ``name`` as an object or a lazy ``"module:attr"`` path (replacing any before)."""
        self._registered[name] = target
        self._loaded.pop(name, None)

    def clear(self) -> None:
        """Forget what was loaded and the entry points read (after installing a plugin)."""
        self._loaded.clear()
        self._points = None

    def require(self, name: str) -> T:
        """The object registered as ``name``, imported on first use; see the module docstring."""
        if name in self._loaded:
            return self._loaded[name]
        target = self._registered.get(name) if name in self._registered else self.entry_points().get(name)
        if target is None:
            raise self._unknown(name, self.names())
        found = self._import(name, target) if isinstance(target, str) else target
        if not self._check(found):
            raise ConfigError(
                f"The {self.kind} {name!r} is {target!r}, which is not {self._expected}.",
                hint="Fix the entry point in the plugin's pyproject.toml (or the register() call).",
            )
        self._loaded[name] = found
        return found

    def _import(self, name: str, target: str) -> Any:
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise self._missing(name, module_name, exc) from None
        found: Any = module
        for part in attr.split(".") if attr else ():
            found = getattr(found, part, None)
        if found is None or not attr:
            raise ConfigError(
                f"The {self.kind} {name!r} points at {target!r}, which does not exist.",
                hint="An entry names 'module:attr'; fix it in the plugin's pyproject.toml.",
            )
        return found

    def _missing(self, name: str, module_name: str, exc: ImportError) -> ModelAtlasError:
        """The error for an entry whose module (or one of its dependencies) does not import."""
        package = (exc.name or module_name).split(".")[0]
        if package == "modelatlas":  # a module of our own that fails to import: a broken install
            return ConfigError(
                f"The {self.kind} {name!r} cannot be loaded: {exc}.",
                hint="Reinstall modelatlas: pip install --force-reinstall modelatlas",
            )
        extra = self._extras.get(name)
        if extra is not None:
            return MissingExtraError(package, extra)
        return ConfigError(
            f"The {self.kind} {name!r} needs the Python package {package!r}, which is not installed.",
            hint=f"Install it with: pip install {package}",
        )
