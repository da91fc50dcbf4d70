"""The exception hierarchy. Every message says what went wrong and what to do next.

Errors that match a builtin also inherit it (``FileNotFoundError``, ``ValueError``,
``LookupError``), so callers that know nothing about modelatlas can still catch them.
The CLI maps ``exit_code``; the server maps ``http_status`` and ``code``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ModelAtlasError(Exception):
    """Base class of every error modelatlas raises on purpose."""

    exit_code = 1
    http_status = 500
    code = "internal_error"

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n{hint}" if hint else message)


class ConfigError(ModelAtlasError, ValueError):
    """A setting or option has a value we cannot use."""

    exit_code = 2
    http_status = 400
    code = "invalid_config"


class InvalidRequestError(ModelAtlasError, ValueError):
    """A request (prompt, parameter) is malformed; ``param`` names the field when one is to blame
    (the API puts it in the envelope's ``param``)."""

    exit_code = 2
    http_status = 400
    code = "invalid_request_error"

    def __init__(self, message: str, *, hint: str | None = None, param: str | None = None):
        self.param = param
        super().__init__(message, hint=hint)


class ContextLengthExceededError(InvalidRequestError):
    """The prompt plus the requested output do not fit in the model's context window.

    Worded as OpenAI words it, word for word: clients recognise the overflow by its text
    (LiteLLM's context-window fallbacks look for "maximum context length"), and the counts
    say by how much to cut. The hint names the model, for the CLI's reader."""

    code = "context_length_exceeded"

    def __init__(self, model_id: str, prompt_tokens: int, max_tokens: int, context_length: int):
        self.model_id = model_id
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.context_length = context_length
        super().__init__(
            f"This model's maximum context length is {context_length} tokens. However, your messages "
            f"resulted in {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
            f"{max_tokens} in the completion). Please reduce the length of the messages or completion.",
            hint=f"The model is {model_id}: shorten the prompt or lower max_tokens.",
        )


class UnknownModelError(ModelAtlasError, LookupError):
    """No model has this id."""

    exit_code = 2
    http_status = 404
    code = "model_not_found"

    def __init__(self, model_id: str, known: Iterable[str] = ()):
        self.model_id = model_id
        self.suggestions = suggest(model_id, known)
        hint = f"Did you mean {_quoted(self.suggestions)}?" if self.suggestions else None
        hint = hint or "Run `modelatlas models list` to see the models that can run here."
        super().__init__(f"Unknown model {model_id!r}.", hint=hint)


class UnknownNameError(ModelAtlasError, LookupError):
    """No entry of a registry (modelatlas.registry) has this name: "did you mean", then the known names."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: Iterable[str] = ()):
        known = sorted(known)
        self.kind = kind
        self.name = name
        self.suggestions = suggest(name, known)
        did_you_mean = f"Did you mean {_quoted(self.suggestions)}? " if self.suggestions else ""
        hint = f"{did_you_mean}Known {kind}s: {', '.join(known) or 'none'}."
        super().__init__(f"Unknown {kind} {name!r}.", hint=hint)


class UnknownBackendError(UnknownNameError):
    """No backend is registered under this name."""

    code = "backend_not_found"

    def __init__(self, name: str, known: Iterable[str] = ()):
        super().__init__("backend", name, known)


class UnknownMetricError(UnknownNameError, ConfigError):
    """No metric is registered under this name (a ConfigError too, as it was before the registry)."""

    def __init__(self, name: str, known: Iterable[str] = ()):
        super().__init__("metric", name, known)


class MissingExtraError(ModelAtlasError, ImportError):
    """An optional dependency is not installed."""

    exit_code = 3

    def __init__(self, package: str, extra: str):
        self.package = package
        self.extra = extra
        super().__init__(
            f"This needs the Python package {package!r}, which is not installed.",
            hint=f"Install it with: pip install 'modelatlas[{extra}]'",
        )


class DependencyVersionError(ModelAtlasError, ImportError):
    """An optional dependency is installed, but at a version modelatlas was not tested with."""

    exit_code = 3

    def __init__(self, package: str, version: str, tested: str):
        self.package = package
        self.version = version
        self.tested = tested
        super().__init__(
            f"modelatlas was tested with {package}{tested}, but {package} {version} is installed.",
            hint=f"Install a tested version with: pip install '{package}{tested}'",
        )


class MissingAPIKeyError(ModelAtlasError):
    """The environment variable that holds a provider key is unset."""

    exit_code = 2
    http_status = 401
    code = "missing_api_key"

    def __init__(self, variable: str, model_id: str):
        self.variable = variable
        super().__init__(
            f"{model_id} needs an API key in the environment variable {variable}, which is not set.",
            hint=f"Set it, for example: export {variable}=...",
        )


class ModelFileError(ModelAtlasError, FileNotFoundError):
    """A model file is missing, unreadable or corrupt."""

    exit_code = 2
    code = "model_file_error"


class BackendError(ModelAtlasError):
    """The backend failed in a way that retrying will not fix."""

    http_status = 502
    code = "backend_error"


class TransientError(BackendError):
    """A failure worth retrying (overload, rate limit, dropped connection)."""

    http_status = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, hint: str | None = None):
        self.retry_after = retry_after
        super().__init__(message, hint=hint)


class RateLimitError(TransientError):
    """The provider answered 429."""

    http_status = 429
    code = "rate_limit_exceeded"


class ServerBusyError(TransientError):
    """This server's queue for a model is full: the client should retry after a moment."""

    http_status = 503
    code = "server_busy"


class CatalogDataError(ModelAtlasError, ValueError):
    """Catalog data (a models.dev file, an api.json, a snapshot) is malformed."""

    exit_code = 2
    code = "catalog_data_error"


class CatalogSyncError(ModelAtlasError):
    """The catalog could not be fetched or saved; the previous snapshot is kept."""

    exit_code = 1
    code = "catalog_sync_failed"


class StoreError(ModelAtlasError):
    """The database cannot be opened or migrated."""

    code = "store_error"


def suggest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The closest known names to ``name``, best first (also matching on the part after '/')."""
    known = list(known)
    found = difflib.get_close_matches(name, known, n=n, cutoff=0.6)
    tail = name.rsplit("/", 1)[-1]
    by_tail = {k.rsplit("/", 1)[-1]: k for k in known}
    for match in difflib.get_close_matches(tail, list(by_tail), n=n, cutoff=0.6):
        if by_tail[match] not in found:
            found.append(by_tail[match])
    return found[:n]


def _quoted(names: list[str]) -> str:
    return " or ".join(repr(n) for n in names)


class DatasetError(ModelAtlasError, ValueError):
    """A dataset file is missing, empty or has a bad row."""

    exit_code = 2
    http_status = 400
    code = "invalid_dataset"


class RagError(ModelAtlasError, ValueError):
    """A knowledge base cannot be built or read: no documents, an unreadable file, bad settings."""

    exit_code = 2
    http_status = 400
    code = "rag_error"


class UnknownKnowledgeBaseError(RagError, LookupError):
    """No knowledge base has this name."""

    http_status = 404
    code = "knowledge_base_not_found"

    def __init__(self, name: str, known: Iterable[str] = ()):
        self.name = name
        self.suggestions = suggest(name, known)
        hint = f"Did you mean {_quoted(self.suggestions)}?" if self.suggestions else None
        hint = hint or (
            "Run `modelatlas rag list` to see the knowledge bases, or build one with `modelatlas rag index`."
        )
        super().__init__(f"Unknown knowledge base {name!r}.", hint=hint)


class KeyConflictError(ModelAtlasError, ValueError):
    """A key command that cannot be done as asked (a name taken, a limit of 0)."""

    exit_code = 2
    http_status = 400
    code = "invalid_request_error"


class UnknownKeyError(ModelAtlasError, LookupError):
    """No API key has this name or id."""

    exit_code = 2
    http_status = 404
    code = "key_not_found"

    def __init__(self, name: str, known: Iterable[str] = ()):
        known = list(known)
        close = suggest(name, known)
        if close:
            hint = f"Did you mean {_quoted(close)}?"
        elif known:
            hint = "Run `modelatlas keys list` to see the keys."
        else:
            hint = "There are no keys yet: modelatlas keys create NAME"
        super().__init__(f"No key named {name!r}.", hint=hint)


class AuthenticationError(ModelAtlasError):
    """A request to the server has no API key, or one that is not valid (401)."""

    exit_code = 2
    http_status = 401
    code = "invalid_api_key"


class PermissionDeniedError(ModelAtlasError):
    """The API key may not use this model (403)."""

    exit_code = 2
    http_status = 403
    code = "model_not_allowed"


class QuotaExceededError(TransientError):
    """An API key is over its requests or tokens per minute, or its budget (429)."""

    http_status = 429

    def __init__(
        self,
        message: str,
        *,
        code: str = "rate_limit_exceeded",
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        hint: str | None = None,
    ):
        self.code = code
        self.headers = headers or {}
        super().__init__(message, retry_after=retry_after, hint=hint)
