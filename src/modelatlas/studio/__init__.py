"""The studio: the web UI over the same functions the CLI uses (`modelatlas studio`)."""

from modelatlas.studio.app import create_app

__all__ = ["create_app"]
