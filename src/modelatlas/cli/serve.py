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
    memory_budget: Annotated[
        float | None,
        typer.Option(
            "--memory-budget",
            min=0,
            help="GB the loaded models may use; past it the least recently used idle ones are "
            "unloaded. Default: 80% of the memory available at start.",
        ),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Accept requests without an API key (loopback hosts only).")
    ] = False,
    price_input: Annotated[
        float | None, typer.Option("--price-input", min=0, help="USD per 1M input tokens for local models.")
    ] = None,
    price_output: Annotated[
        float | None, typer.Option("--price-output", min=0, help="USD per 1M output tokens for local models.")
    ] = None,
    price_hour: Annotated[
        float | None, typer.Option("--price-hour", min=0, help="USD per compute-hour for local models.")
    ] = None,
    prices: Annotated[
        str | None, typer.Option("--prices", help="YAML file: model id -> {input, output, per_hour}.")
    ] = None,
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel",
            min=1,
            max=64,
            help="Requests a local llama.cpp model decodes together (continuous batching); 1: one at a time.",
        ),
    ] = 4,
) -> None:
    """Serve models behind an OpenAI-compatible API (/v1/chat/completions, /v1/embeddings, ...)."""
    import uvicorn

    from modelatlas.serve import create_app
    from modelatlas.serve.auth import check_no_auth
    from modelatlas.serve.deployments import announce, withdraw
    from modelatlas.serve.prices import PriceBook

    if no_auth:
        check_no_auth(host)
    book = PriceBook.from_options(price_input, price_output, price_hour, prices)
    app = create_app(
        model or None,
        queue_size=queue_size,
        auth=not no_auth,
        prices=book,
        memory_budget_gb=memory_budget,
        parallel=parallel,
    )
    names = ", ".join(app.state.pool.records) or "no models"
    err = console(stderr=True)
    err.print(f"Serving {names} on http://{host}:{port}/v1", soft_wrap=True)
    if no_auth:
        err.print("Authentication is off (--no-auth): any local process can call it.")
    announced = announce(host, port, list(app.state.pool.records), auth=not no_auth)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        withdraw(announced)
