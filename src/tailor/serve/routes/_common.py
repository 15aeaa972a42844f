from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from tailor.serve.models import Problem

PathId = Annotated[str, Path(min_length=1, max_length=256, description="An id.")]

KEYED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No API key, or an unknown one."},
    403: {"model": Problem, "description": "The key's role does not allow this."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "Unknown."}}
