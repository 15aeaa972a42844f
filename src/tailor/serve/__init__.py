"""The HTTP API: FastAPI over the published build (see docs/serve.md)."""

from tailor.serve.app import create_app
from tailor.serve.auth import create_key
from tailor.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "create_key"]
