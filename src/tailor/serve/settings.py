"""What the server is started with: the warehouse, the settings file and CORS origins."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tailor.config import load_settings


@dataclass(frozen=True)
class ServeSettings:
    """``db`` and ``config`` as for every command; ``cors_origins`` from ``TAILOR_CORS_ORIGINS``
    (comma-separated, ``*`` for any) unless given."""

    db: Path
    config: Path | None = None
    cors_origins: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def resolve(
        cls,
        db: str | Path | None = None,
        config: str | Path | None = None,
        cors_origins: list[str] | None = None,
    ) -> ServeSettings:
        settings = load_settings(db, config)
        if cors_origins is None:
            named = os.environ.get("TAILOR_CORS_ORIGINS", "")
            cors_origins = [o.strip() for o in named.split(",") if o.strip()]
        return cls(settings.db, None if config is None else Path(config), tuple(cors_origins))
