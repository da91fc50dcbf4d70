"""`modelatlas studio`: the web UI, on the same home folder as the CLI."""

from __future__ import annotations

from typing import Annotated

import typer

from modelatlas.cli.common import console, handle_errors

WILDCARDS = ("0.0.0.0", "::")


@handle_errors
def studio_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the studio in a web browser.")] = False,
    allow_remote: Annotated[
        bool,
        typer.Option("--allow-remote", help="Listen on a non-loopback address (the studio has no login)."),
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="Another name the studio may be reached at (a DNS name of this machine); repeatable.",
        ),
    ] = None,
) -> None:
    """Open the studio: catalog, model cards, benchmarks, playground, arena, runs, improve, deployments."""
    import uvicorn

    from modelatlas.errors import ConfigError
    from modelatlas.serve.auth import is_loopback
    from modelatlas.studio import create_app

    if not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"The studio has no login, and on {host} anyone who reaches it could create API keys "
            "and run models.",
            hint="Keep the default 127.0.0.1 (tunnel to it with ssh -L 8765:127.0.0.1:8765), "
            "or add --allow-remote if the network is yours alone.",
        )
    app = create_app(allowed_hosts(host, allow_host or []), any_address=host in WILDCARDS)
    url = f"http://{'127.0.0.1' if host in WILDCARDS else host}:{port}/"
    console(stderr=True).print(f"modelatlas studio on {url}", soft_wrap=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """The Host values the studio answers besides loopback ones: the address it listens on (on
    every address: this machine's name, and any IP address, see create_app) and --allow-host."""
    import socket

    return [socket.gethostname() if host in WILDCARDS else host, *extra]
