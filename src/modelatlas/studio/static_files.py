"""Static files for the studio: its own scripts and styles, and plotly.min.js from the installed
plotly package (no CDN). Each is sent gzipped when the browser accepts it (compressed once per
process and content), with an ETag naming its content and a Cache-Control header: a revalidation
with a matching ETag gets 304 and no body."""

from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from modelatlas.studio.web import STATIC_DIR

TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
}
COMPRESSIBLE = (".js", ".css", ".svg", ".json")
# The studio's own files change with the installed version: the browser keeps them 5 minutes and
# then asks again (a 304 when unchanged); plotly changes only with the plotly package.
MAX_AGE = {"plotly.min.js": 86400}
DEFAULT_MAX_AGE = 300


def static_response(request: Request, name: str) -> Response:
    """The file ``name`` of the static folder (or plotly.min.js), gzipped and with cache headers."""
    path = plotly_path() if name == "plotly.min.js" else _own_file(name)
    stat = path.stat()
    body, packed, etag = _prepared(str(path), stat.st_mtime_ns, stat.st_size)
    headers = {
        "Cache-Control": f"public, max-age={MAX_AGE.get(name, DEFAULT_MAX_AGE)}",
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media_type = TYPES.get(path.suffix, "application/octet-stream")
    if packed is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=media_type, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@functools.lru_cache(maxsize=64)
def _prepared(path: str, mtime_ns: int, size: int) -> tuple[bytes, bytes | None, str]:
    """(the file's bytes, gzipped or None when not worth it, its ETag); cached per content version."""
    data = Path(path).read_bytes()
    etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
    packed = None
    if Path(path).suffix in COMPRESSIBLE and len(data) > 512:
        packed = gzip.compress(data, compresslevel=6, mtime=0)
    return data, packed, etag


def _own_file(name: str) -> Path:
    """A file directly in the static folder; anything else (a folder, "..", a missing file) is a 404."""
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR.resolve() or not path.is_file():
        raise HTTPException(404, f"No static file {name!r}.")
    return path


def plotly_path() -> Path:
    """plotly.min.js as the installed plotly package ships it."""
    try:
        import plotly
    except ImportError as exc:
        raise HTTPException(404, "plotly is not installed: pip install 'modelatlas[eval]'") from exc
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise HTTPException(404, f"plotly.min.js is missing from {path.parent}")
    return path
