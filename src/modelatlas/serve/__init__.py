"""`modelatlas serve`: an OpenAI-compatible API for the models of this machine."""

from modelatlas.serve.app import create_app

__all__ = ["create_app"]
