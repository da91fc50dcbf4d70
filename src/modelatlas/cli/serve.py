"""`modelatlas serve`: run the OpenAI-compatible API with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from modelatlas.cli.common import console, handle_errors


@handle_errors
def serve_command(
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="A model to serve (repeat it); default: every runnable local model."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    queue_size: Annotated[
        int, typer.Option("--queue-size", min=1, help="Requests per model, running or waiting, before 503.")
    ] = 16,
) -> None:
    """Serve models behind an OpenAI-compatible API (/v1/chat/completions, /v1/embeddings, ...)."""
    import uvicorn

    from modelatlas.serve import create_app

    app = create_app(model or None, queue_size=queue_size)
    names = ", ".join(app.state.pool.records) or "no models"
    console(stderr=True).print(f"Serving {names} on http://{host}:{port}/v1", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
