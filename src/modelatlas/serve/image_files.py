"""The short-lived picture files behind ``response_format: "url"`` of /v1/images/generations.

Each picture is written under the home's cache (``cache/served-images``) as ``<token>.<ext>``,
the token 32 random bytes (URL-safe base64): the URL is the capability, as OpenAI's signed
URLs are, so fetching it needs no API key (an ``<img src>`` can show it). A file lives ``ttl_s``
seconds from when it was written (its modification time, so the rule survives a restart);
an expired one is answered 404 and deleted, and every write sweeps the folder of expired ones.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from modelatlas.errors import ModelAtlasError

DEFAULT_TTL_S = 3600.0  # an hour, as OpenAI's image URLs
ROUTE = "/v1/images/files"
_NAME = re.compile(r"^[A-Za-z0-9_-]{43}\.(png|jpg|webp|gif)$")
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


class ImageFileGoneError(ModelAtlasError, LookupError):
    """A picture URL that never existed here, or whose time is up."""

    http_status = 404
    code = "not_found"


class ImageFiles:
    def __init__(self, folder: Path, ttl_s: float = DEFAULT_TTL_S):
        self.folder, self.ttl_s = folder, ttl_s

    def save(self, data: bytes, suffix: str) -> str:
        """Write ``data`` and return the file's name (its token and suffix)."""
        self.sweep()
        self.folder.mkdir(parents=True, exist_ok=True)
        name = secrets.token_urlsafe(32) + suffix
        (self.folder / name).write_bytes(data)
        return name

    def open(self, name: str) -> tuple[Path, str, float]:
        """The file's path, its media type and the seconds it has left; 404 when it is unknown
        or expired (and then deleted)."""
        path = self.folder / name
        if not _NAME.match(name) or not path.is_file():
            raise _gone()
        left = self._left(path)
        if left <= 0:
            path.unlink(missing_ok=True)
            raise _gone()
        return path, MEDIA_TYPES[name.rsplit(".", 1)[1]], left

    def sweep(self) -> int:
        """Delete the expired files; how many went."""
        if not self.folder.is_dir():
            return 0
        gone = 0
        for path in self.folder.iterdir():
            if _NAME.match(path.name) and self._left(path) <= 0:
                path.unlink(missing_ok=True)
                gone += 1
        return gone

    def _left(self, path: Path) -> float:
        try:
            return path.stat().st_mtime + self.ttl_s - time.time()
        except FileNotFoundError:
            return 0.0


def _gone() -> ImageFileGoneError:
    return ImageFileGoneError(
        "No such image: its URL is wrong or it has expired.",
        hint="Image URLs from /v1/images/generations last a while only (the server's --image-url-ttl); "
        'generate the image again, or ask for response_format "b64_json" to keep the bytes.',
    )
