"""Tailor: personalization for retailers from their own transaction data."""

from tailor.errors import TailorError

__version__ = "0.1.0"

__all__ = ["TailorError", "__version__"]
