"""Settings: one typed object read from ``tailor.toml`` and the environment.

Precedence, highest first: a command-line option, an environment variable, ``tailor.toml`` in the
working directory (or the file named by ``$TAILOR_CONFIG``), the defaults below.

``tailor.toml``::

    db = "shop.duckdb"            # the warehouse file

    [ingest.events]               # one table per kind: events, items, customers, campaigns, ...
    date_format = "%d-%m-%Y"      # strptime format of the timestamp column(s)
    map = { uid = "customer_id", mid = "item_id", when = "timestamp" }

    [dataset.weights]             # interaction weight of one event of each type
    purchase = 1.0
    view = 0.1
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailor.errors import ConfigError

DEFAULT_DB = "tailor.duckdb"
CONFIG_FILE = "tailor.toml"


@dataclass(frozen=True)
class IngestSettings:
    """How the files of one kind are read: column mapping and timestamp format."""

    mapping: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved once."""

    db: Path = Path(DEFAULT_DB)
    ingest: dict[str, IngestSettings] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    source: Path | None = None

    def ingest_for(self, kind: str) -> IngestSettings:
        return self.ingest.get(kind, IngestSettings())


def load_settings(db: str | Path | None = None, config: str | Path | None = None) -> Settings:
    """Resolve settings from an explicit ``db``, the environment and ``tailor.toml``."""
    path = Path(config or os.environ.get("TAILOR_CONFIG") or CONFIG_FILE)
    raw: dict[str, Any] = {}
    source = None
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        source = path
    elif config is not None:
        raise ConfigError(f"{path}: config file not found")

    db_path = db or os.environ.get("TAILOR_DB") or raw.get("db") or DEFAULT_DB
    ingest = {}
    for kind, table in (raw.get("ingest") or {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [ingest.{kind}] must be a table")
        mapping = table.get("map", {})
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise ConfigError(f"{path}: [ingest.{kind}].map must map source names to target names")
        ingest[kind.replace("_", "-")] = IngestSettings(dict(mapping), table.get("date_format"))
    weights = (raw.get("dataset") or {}).get("weights") or {}
    try:
        weights = {str(k): float(v) for k, v in weights.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: [dataset.weights] values must be numbers") from None
    return Settings(db=Path(db_path), ingest=ingest, weights=weights, source=source)
