"""The studio application: static files, plotly.js from the installed plotly package, the pages."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from modelatlas import __version__
from modelatlas.errors import ModelAtlasError
from modelatlas.hosts import host_allowed, host_name
from modelatlas.studio.static_files import static_response
from modelatlas.studio.web import render

FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<circle cx="8" cy="8" r="7" fill="#2457a6"/></svg>'
)


def create_app(allowed_hosts: Iterable[str] = (), any_address: bool = False) -> FastAPI:
    """The studio web UI, reading and writing the same home folder as the CLI.

    It answers requests addressed to a loopback host or one of ``allowed_hosts``; with
    ``any_address`` (listening on 0.0.0.0 or ::) also any IP address written as the host."""
    app = FastAPI(title="modelatlas studio", version=__version__, docs_url=None, redoc_url=None)
    app.add_exception_handler(HTTPException, _error_page)
    app.add_exception_handler(ModelAtlasError, _error_page)
    _plumbing(app)
    _same_origin_only(app)
    _pages(app)
    _own_hosts_only(app, tuple(allowed_hosts), any_address)  # added last: it runs first
    app.router.on_shutdown.append(_release_models)
    return app


async def _release_models() -> None:
    from modelatlas.studio.playground import release_models

    await release_models()


def _own_hosts_only(app: FastAPI, allowed: tuple[str, ...], any_address: bool) -> None:
    """Refuse every request addressed to a name that is not the studio's (DNS rebinding).

    A page on evil.example can make its name resolve to 127.0.0.1 and then read the studio's
    pages and post its forms as same-origin requests: the browser sends Host and Origin both
    evil.example, so the Origin check cannot tell. The Host header still names the attacker's
    domain, and that is what this refuses. An IP address as the host cannot come from rebinding
    (the page's origin is then that address), so a studio on all addresses accepts any."""

    @app.middleware("http")
    async def check_host(request: Request, call_next):
        header = request.headers.get("host")
        if host_allowed(header, allowed) or (any_address and _is_address(host_name(header))):
            return await call_next(request)
        shown = (header or "")[:100]
        port = (request.scope.get("server") or (None, "PORT"))[1]
        return PlainTextResponse(
            f"Refused: this studio answers only at its own address, not at host {shown!r}.\n"
            f"Open it at http://127.0.0.1:{port}/, or start it with --allow-host NAME "
            "to accept another name.\n",
            status_code=400,
            headers={"X-Content-Type-Options": "nosniff"},
        )


def _is_address(name: str | None) -> bool:
    if name is None:
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _same_origin_only(app: FastAPI) -> None:
    """Refuse a POST that another site's page sends through the user's browser (CSRF): the
    browser names that page's origin, which differs from the studio's own address."""

    @app.middleware("http")
    async def check_origin(request: Request, call_next):
        origin = request.headers.get("origin")
        unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
        if unsafe and origin and urlsplit(origin).netloc != request.headers.get("host"):
            return PlainTextResponse("Refused: this request came from another site's page.", status_code=403)
        return await call_next(request)


def _pages(app: FastAPI) -> None:
    from modelatlas.studio import (
        arena,
        audio,
        benchmarks,
        catalog_pages,
        compare_models,
        decisions,
        deployments,
        image_arena,
        images,
        improve_pages,
        jobs,
        model_page,
        playground,
        runs_pages,
    )

    app.include_router(catalog_pages.router)
    app.include_router(model_page.router)
    app.include_router(compare_models.router)
    app.include_router(benchmarks.router)
    app.include_router(runs_pages.router)
    app.include_router(improve_pages.router)
    app.include_router(decisions.router)
    app.include_router(playground.router)
    app.include_router(audio.router)
    app.include_router(images.router)
    app.include_router(arena.router)
    app.include_router(image_arena.router)
    app.include_router(jobs.router)
    app.include_router(deployments.router)


def _plumbing(app: FastAPI) -> None:
    @app.get("/static/{name}", include_in_schema=False)
    def static(request: Request, name: str) -> Response:
        return static_response(request, name)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/catalog")


async def _error_page(request: Request, exc: Exception):
    """An HTTP error or a modelatlas error (its message and its hint) as a page."""
    if isinstance(exc, ModelAtlasError):
        status, detail, hint = exc.http_status, exc.message, exc.hint
    else:
        status, detail, hint = exc.status_code, exc.detail, None
    return render(request, "error.html", status_code=status, status=status, detail=detail, hint=hint)
