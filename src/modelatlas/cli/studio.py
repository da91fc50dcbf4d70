"""`modelatlas studio`: the web UI, on the same home folder as the CLI."""

from __future__ import annotations

from typing import Annotated

import typer

from modelatlas.cli.common import console, handle_errors


@handle_errors
def studio_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the studio in a web browser.")] = False,
) -> None:
    """Open the studio: catalog, model cards, benchmarks, playground, arena, runs, improve, deployments."""
    import uvicorn

    from modelatlas.studio import create_app

    app = create_app()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    console(stderr=True).print(f"modelatlas studio on {url}", soft_wrap=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
