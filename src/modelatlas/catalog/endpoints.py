"""Register every model an OpenAI-compatible server lists at ``/v1/models`` (Ollama, vLLM, LM Studio)."""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse

from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import BackendError, ConfigError, MissingAPIKeyError

KNOWN_PORTS = {11434: "ollama", 1234: "lmstudio", 8000: "vllm", 8080: "llamacpp-server"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def base_url(url: str) -> str:
    """The API root: ``http://host:port/v1`` whether or not the user wrote the ``/v1``."""
    url = url.rstrip("/")
    if url.endswith("/models"):
        url = url[: -len("/models")]
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{url!r} is not an http(s) URL.", hint="For example: http://127.0.0.1:11434/v1")
    return url if parsed.path.rstrip("/").endswith("/v1") else f"{url}/v1"


def provider_name(url: str) -> str:
    """A provider id for the server: a known local server by its port, else its host and port."""
    parsed = urlparse(url)
    host = parsed.hostname or "endpoint"
    if host in LOOPBACK and parsed.port in KNOWN_PORTS:
        return KNOWN_PORTS[parsed.port]
    slug = re.sub(r"[^a-z0-9]+", "-", f"{host}-{parsed.port or ''}".lower()).strip("-")
    return slug or "endpoint"


def list_endpoint(url: str, api_key_env: str | None = None, provider: str | None = None) -> list[ModelRecord]:
    """Ask the server for its models and describe each as a runnable record."""
    import httpx

    root = base_url(url)
    headers = {}
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise MissingAPIKeyError(api_key_env, root)
        headers["Authorization"] = f"Bearer {key}"
    try:
        response = httpx.get(f"{root}/models", headers=headers, timeout=15)
        response.raise_for_status()
        data = response.json()["data"]
    except httpx.HTTPStatusError as exc:
        raise BackendError(
            f"{root}/models answered HTTP {exc.response.status_code}.",
            hint="Check the URL and, if the server needs one, --api-key-env.",
        ) from None
    except httpx.HTTPError as exc:
        raise BackendError(
            f"Could not reach {root}/models: {type(exc).__name__}.",
            hint="Is the server running? Start it, then try again.",
        ) from None
    except (ValueError, KeyError, TypeError):
        raise BackendError(
            f"{root}/models did not answer with an OpenAI model list.",
            hint="Point --endpoint at an OpenAI-compatible API (…/v1).",
        ) from None
    prefix = provider or provider_name(root)
    hosting = "local" if urlparse(root).hostname in LOOPBACK else "hosted"
    return [_record(prefix, root, item, api_key_env, hosting) for item in data if item.get("id")]


def _record(prefix: str, root: str, item: dict, api_key_env: str | None, hosting: str) -> ModelRecord:
    from modelatlas.backends.openai_compat import OpenAIBackend

    remote = str(item["id"])
    slug = re.sub(r"[^A-Za-z0-9._:@+/-]+", "-", remote).strip("/-") or "model"
    options = OpenAIBackend.options_for(base_url=root, model=remote, api_key_env=api_key_env or None)
    context = item.get("max_model_len") or item.get("context_length")
    return ModelRecord(
        id=f"{prefix}/{slug}",
        name=remote,
        provider=prefix,
        backend="openai",
        options=options,
        hosting=hosting,
        runnable=True,
        source="endpoint",
        context_length=context if isinstance(context, int) else None,
        tasks=["embeddings"] if "embed" in remote.lower() else ["chat", "text-generation"],
        mode="embedding" if "embed" in remote.lower() else "chat",
        links=[{"label": "endpoint", "url": root}],
    )
