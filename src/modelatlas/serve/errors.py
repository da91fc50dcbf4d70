"""One function maps every exception to OpenAI's error envelope and its HTTP status."""

from __future__ import annotations

import logging
import math

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from modelatlas.errors import ModelAtlasError, QuotaExceededError, ServerBusyError, TransientError
from modelatlas.serve.protocol import ErrorInfo, ErrorResponse

log = logging.getLogger(__name__)

_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
# Union members appear in pydantic's error locations ("stop", "str"): they are not parameters.
_TYPE_LABELS = {"str", "int", "float", "bool", "list", "dict", "none"}
_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
_INTERNAL = "The server had an error while processing your request. Please try again."


class RequestTooLargeError(ModelAtlasError, ValueError):
    """A request body over the server's limit (``--max-body-mb``)."""

    http_status = 413
    code = "request_too_large"


class RequestTimeoutError(ModelAtlasError, TimeoutError):
    """A client that took longer than ``--read-timeout`` to send its request."""

    http_status = 408
    code = "request_timeout"


class HostNotAllowedError(ModelAtlasError, PermissionError):
    """A Host header this server does not answer (a DNS-rebinding page, say)."""

    http_status = 400
    code = "host_not_allowed"


class ShuttingDownError(ModelAtlasError):
    """The server is stopping and its grace period for running requests is over."""

    http_status = 503
    code = "server_shutting_down"


def error_response(exc: BaseException) -> JSONResponse:
    """The status, the envelope and any Retry-After header for ``exc`` (never a stack trace)."""
    status, body, headers = error_body(exc)
    if status >= 500 and isinstance(exc, ServerBusyError | ShuttingDownError):
        # A full queue or a stopping server is the capacity working as designed, not a fault:
        # one line, no traceback (32 clients on a queue of 16 would bury the log in them).
        log.warning("%s answered %d: %s", type(exc).__name__, status, exc.message)
    elif status >= 500 and isinstance(exc, ModelAtlasError):  # every fault in the log, with its traceback
        log.error("%s answered %d: %s", type(exc).__name__, status, exc.message, exc_info=exc)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_event(exc: BaseException) -> tuple[int, str]:
    """The status of ``exc`` and the server-sent event that tells a client of a stream about it
    (OpenAI's shape: ``data: {"error": {...}}``)."""
    status, body, _ = error_body(exc)
    return status, f"data: {body.model_dump_json()}\n\n"


def error_body(exc: BaseException) -> tuple[int, ErrorResponse, dict[str, str]]:
    """The status, the envelope and the headers (Retry-After, say) for ``exc``."""
    headers: dict[str, str] = {}
    param = None
    if isinstance(exc, ModelAtlasError):
        status, code, param = exc.http_status, exc.code, getattr(exc, "param", None)
        message = f"{exc.message} {exc.hint}" if exc.hint else exc.message
        headers.update(getattr(exc, "headers", None) or {})
        if isinstance(exc, TransientError) and _retryable(exc):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after or 1)))
    elif isinstance(exc, RequestValidationError):
        status, code = 400, "invalid_request_error"
        message, param = _validation_message(exc.errors())
        if message.startswith("We could not parse"):
            code = "invalid_json"
    elif isinstance(exc, HTTPException):
        status, code, message = exc.status_code, None, str(exc.detail)
        headers.update(exc.headers or {})
    else:
        log.error("unexpected error while serving a request", exc_info=exc)
        status, code, message = 500, "internal_error", _INTERNAL
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = ErrorResponse(error=ErrorInfo(message=message, type=kind, param=param, code=code))
    return status, body, headers


def _retryable(exc: TransientError) -> bool:
    """A spent budget does not come back by waiting: no Retry-After for it."""
    return not (isinstance(exc, QuotaExceededError) and exc.retry_after is None)


def _validation_message(errors) -> tuple[str, str | None]:
    errors = list(errors)
    if not errors:
        return "The request is invalid.", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "We could not parse the JSON body of your request. Send a valid JSON object.", None
    param = _param(first.get("loc", ()))
    if param is None:
        if first.get("type") == "missing":
            return "The request has no body. Send a JSON object.", None
        return "The request body must be a JSON object.", None
    same = [e for e in errors if _param(e.get("loc", ())) == param]
    if first.get("type") == "missing":
        return f"Missing required parameter: '{param}'.", param
    expected = [_EXPECTED[e["type"]] for e in same if e.get("type") in _EXPECTED]
    if expected:
        kinds = " or ".join(dict.fromkeys(expected))
        return f"Invalid type for '{param}': expected {kinds}.", param
    return f"Invalid value for '{param}': {_plain(first)}", param


def _param(loc) -> str | None:
    parts = [p for p in loc[1:] if not (isinstance(p, str) and _is_type_label(p))] if loc else []
    if not parts:
        return None
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _is_type_label(part: str) -> bool:
    return part in _TYPE_LABELS or "[" in part or part[:1].isupper() or part.startswith("function-")


def _plain(error: dict) -> str:
    ctx = error.get("ctx") or {}
    kind = error.get("type")
    bounds = {
        "greater_than_equal": "at least {ge}",
        "greater_than": "greater than {gt}",
        "less_than_equal": "at most {le}",
        "less_than": "less than {lt}",
    }
    if kind in bounds:
        return f"it must be {bounds[kind].format(**ctx)}."
    if kind == "too_short":
        return "it must not be empty."
    if kind == "literal_error":
        return f"it must be {ctx.get('expected')}."
    return "it is not an accepted value."
