"""`modelatlas serve`: run the OpenAI-compatible API with uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import typer

from modelatlas.cli.common import console, handle_errors

Models = Annotated[
    list[str] | None,
    typer.Option("--model", help="A model to serve (repeat it); default: every runnable local model."),
]
Host = Annotated[str, typer.Option("--host", help="Address to listen on.")]
Port = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")]
QueueSize = Annotated[
    int, typer.Option("--queue-size", min=1, help="Requests per model, running or waiting, before 503.")
]
MemoryBudget = Annotated[
    float | None,
    typer.Option(
        "--memory-budget",
        min=0,
        help="GB the loaded models may use; past it the least recently used idle ones are "
        "unloaded. Default: 80% of the memory available at start.",
    ),
]
NoAuth = Annotated[
    bool, typer.Option("--no-auth", help="Accept requests without an API key (loopback hosts only).")
]
PriceInput = Annotated[
    float | None, typer.Option("--price-input", min=0, help="USD per 1M input tokens for local models.")
]
PriceOutput = Annotated[
    float | None, typer.Option("--price-output", min=0, help="USD per 1M output tokens for local models.")
]
PriceHour = Annotated[
    float | None, typer.Option("--price-hour", min=0, help="USD per compute-hour for local models.")
]
Prices = Annotated[
    str | None, typer.Option("--prices", help="YAML file: model id -> {input, output, per_hour}.")
]
Parallel = Annotated[
    int,
    typer.Option(
        "--parallel",
        min=1,
        max=64,
        help="Requests a local llama.cpp model decodes together (continuous batching); 1: one at a time.",
    ),
]

MaxBody = Annotated[
    float,
    typer.Option("--max-body-mb", min=0.001, help="Largest request body in MB; a larger one gets 413."),
]
MaxAudio = Annotated[
    float,
    typer.Option(
        "--max-audio-mb",
        min=0.001,
        help="Largest audio file in MB for /v1/audio/transcriptions (OpenAI's limit: 25); "
        "a larger one gets 413.",
    ),
]
AllowImageURLs = Annotated[
    bool,
    typer.Option(
        "--allow-image-urls",
        help="Fetch http(s) image_url parts for local vision models (hosted ones get the URL as "
        "given); without it such a part gets 400 and images must come as data URLs.",
    ),
]
AllowChatOnBase = Annotated[
    bool,
    typer.Option(
        "--allow-chat-on-base",
        help="Let base models (mode completion, such as local/gemma-3-270m) answer "
        "/v1/chat/completions; without it they get 400 pointing to /v1/completions.",
    ),
]
MaxImage = Annotated[
    float,
    typer.Option("--max-image-mb", min=0.001, help="Largest image in MB fetched for an image_url part."),
]
ImageURLTTL = Annotated[
    float,
    typer.Option(
        "--image-url-ttl",
        min=0.001,
        help="Seconds a generated picture's URL (response_format url) lasts before it is deleted.",
    ),
]
ReadTimeout = Annotated[
    float,
    typer.Option(
        "--read-timeout",
        min=0.1,
        help="Seconds a client may take to send a request's headers, and again its body; "
        "slower ones get 408 and are disconnected.",
    ),
]
ShutdownTimeout = Annotated[
    float,
    typer.Option(
        "--shutdown-timeout",
        min=0,
        help="On SIGTERM, seconds running requests may take to finish; then they end with an error.",
    ),
]
LogFormat = Annotated[
    Literal["text", "json"],
    typer.Option(
        "--log-format",
        help="The log on stderr (one access line per request, errors with tracebacks): text, "
        "or json (one JSON object per line).",
    ),
]


@handle_errors
def serve_command(
    model: Models = None,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    queue_size: QueueSize = 16,
    memory_budget: MemoryBudget = None,
    no_auth: NoAuth = False,
    price_input: PriceInput = None,
    price_output: PriceOutput = None,
    price_hour: PriceHour = None,
    prices: Prices = None,
    parallel: Parallel = 4,
    max_body_mb: MaxBody = 16.0,
    max_audio_mb: MaxAudio = 25.0,
    allow_image_urls: AllowImageURLs = False,
    allow_chat_on_base: AllowChatOnBase = False,
    max_image_mb: MaxImage = 20.0,
    image_url_ttl: ImageURLTTL = 3600.0,
    read_timeout: ReadTimeout = 30.0,
    shutdown_timeout: ShutdownTimeout = 30.0,
    log_format: LogFormat = "text",
) -> None:
    """Serve models behind an OpenAI-compatible API (/v1/chat/completions, /v1/embeddings, ...)."""
    from modelatlas.serve import create_app
    from modelatlas.serve.auth import check_no_auth
    from modelatlas.serve.logs import configure
    from modelatlas.serve.prices import PriceBook

    if no_auth:
        check_no_auth(host)
    book = PriceBook.from_options(price_input, price_output, price_hour, prices)
    configure(log_format)
    app = create_app(
        model or None,
        queue_size=queue_size,
        auth=not no_auth,
        prices=book,
        memory_budget_gb=memory_budget,
        parallel=parallel,
        max_body_mb=max_body_mb,
        max_audio_mb=max_audio_mb,
        allow_image_urls=allow_image_urls,
        allow_chat_on_base=allow_chat_on_base,
        max_image_mb=max_image_mb,
        image_url_ttl_s=image_url_ttl,
        read_timeout_s=read_timeout,
        shutdown_timeout_s=shutdown_timeout,
        host=host,
    )
    timeouts = {"read_timeout_s": read_timeout, "shutdown_timeout_s": shutdown_timeout}
    _run(app, host, port, auth=not no_auth, log_format=log_format, **timeouts)


def _run(app, host: str, port: int, auth: bool, log_format: str = "text", **timeouts: float) -> None:
    """Announce the server (for the studio's Deployments page) and run it until stopped."""
    from modelatlas.serve.deployments import announce, withdraw
    from modelatlas.serve.server import run

    names = ", ".join(app.state.pool.records) or "no models"
    err = console(stderr=True)
    say = logging.getLogger("modelatlas.serve").info if log_format == "json" else err.print
    say(f"Serving {names} on http://{host}:{port}/v1")  # json: stderr holds only JSON lines
    if not auth:
        say("Authentication is off (--no-auth): any local process can call it.")
    announced = announce(host, port, list(app.state.pool.records), auth=auth)
    try:
        # Our log setup (serve/logs.py) for uvicorn too; our access log replaces uvicorn's.
        run(app, host, port, **timeouts, log_level="warning", log_config=None, access_log=False)
    finally:
        withdraw(announced)
