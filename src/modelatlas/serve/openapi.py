"""The OpenAPI document as clients see the server: bearer keys, and no 422 (bad input is a 400
in OpenAI's error envelope, which the routes already declare)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PUBLIC = ("/health", "/metrics")


def install(app: FastAPI, auth: bool) -> None:
    """Replace ``app.openapi`` with one that describes what the server really does."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = _corrected(schema, auth)
        return app.openapi_schema

    app.openapi = openapi


def _corrected(schema: dict, auth: bool) -> dict:
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            if path in PUBLIC:  # no body, no key, no model: only success or a server error
                for status in [s for s in responses if s not in ("200", "500")]:
                    responses.pop(status)
            elif auth:
                operation["security"] = [{"bearer": []}]
    components = schema.setdefault("components", {})
    schemas = components.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if auth:
        components["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A key from `modelatlas keys create NAME` (Authorization: Bearer <key>).",
            }
        }
    return schema
