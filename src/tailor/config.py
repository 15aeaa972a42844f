"""Settings: one typed object read from ``tailor.toml`` and the environment.

Precedence, highest first: a command-line option, an environment variable, ``tailor.toml`` in the
working directory (or the file named by ``$TAILOR_CONFIG``), the defaults below.

``tailor.toml``::

    db = "shop.duckdb"            # the warehouse file
    memory_limit = "4GB"          # DuckDB's memory limit (also $TAILOR_MEMORY_LIMIT); it spills
                                  # to disk beyond it. Default: 80 % of the machine's memory.

    [ingest.events]               # one table per kind: events, items, customers, campaigns, ...
    date_format = "%d-%m-%Y"      # strptime format of the timestamp column(s)
    map = { uid = "customer_id", mid = "item_id", when = "timestamp" }

    [build]                       # which recommenders a build fits (default: all);
    recommenders = ["recency_frequency", "hybrid"]   # also $TAILOR_RECOMMENDERS=a,b

    [dataset.weights]             # interaction weight of one event of each type
    purchase = 1.0
    view = 0.1

    [privacy]                     # differentially private reports (tailor.privacy.dp)
    dp_budget = 3.0               # ε a warehouse's data may spend in all (also $TAILOR_DP_BUDGET)
    dp_bounds = { max_cells = 40, max_cell_spend = 25.0 }   # contribution bounds per customer
    encryption_key_file = "tailor.key"     # files holding the secrets of encryption at rest and
    pseudonym_key_file = "pseudonym.key"   # of pseudonymous ids, relative to this file (or
                                  # $TAILOR_ENCRYPTION_KEY, ...: see tailor.privacy.keys)
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailor.errors import ConfigError
from tailor.store.schema import KINDS

DEFAULT_DB = "tailor.duckdb"
CONFIG_FILE = "tailor.toml"
DEFAULT_DP_BUDGET = 3.0


@dataclass(frozen=True)
class IngestSettings:
    """How the files of one kind are read: column mapping and timestamp format."""

    mapping: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None


@dataclass(frozen=True)
class PrivacySettings:
    """Differential privacy: the ε budget of a warehouse's data and the contribution bounds
    (names and defaults in :class:`tailor.privacy.dp.Bounds`)."""

    dp_budget: float = DEFAULT_DP_BUDGET
    dp_bounds: dict[str, float] = field(default_factory=dict)
    # Files holding the secrets of tailor.privacy.keys (the secrets themselves never live here).
    encryption_key_file: Path | None = None
    pseudonym_key_file: Path | None = None


@dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved once."""

    db: Path = Path(DEFAULT_DB)
    ingest: dict[str, IngestSettings] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    memory_limit: str | None = None
    recommenders: tuple[str, ...] | None = None
    source: Path | None = None
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    def ingest_for(self, kind: str) -> IngestSettings:
        return self.ingest.get(kind, IngestSettings())


def load_settings(db: str | Path | None = None, config: str | Path | None = None) -> Settings:
    """Resolve settings from an explicit ``db``, the environment and ``tailor.toml``."""
    named = config or os.environ.get("TAILOR_CONFIG")
    path = Path(named or CONFIG_FILE)
    raw: dict[str, Any] = {}
    source = None
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        source = path
    elif named:
        # A file the user named (--config or $TAILOR_CONFIG) must exist; only the default
        # ./tailor.toml is optional.
        raise ConfigError(f"{path}: config file not found")

    if not isinstance(raw.get("db", ""), str):
        raise ConfigError(f"{path}: db must be a file name in quotes")
    db_path = db or os.environ.get("TAILOR_DB") or raw.get("db") or DEFAULT_DB
    ingest = {}
    for kind, table in _table(raw, "ingest", path).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [ingest.{kind}] must be a table")
        if kind.replace("_", "-") not in KINDS:
            raise ConfigError(
                f"{path}: [ingest.{kind}]: unknown kind; use one of {', '.join(KINDS)}"
            )
        mapping = table.get("map", {})
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise ConfigError(f"{path}: [ingest.{kind}].map must map source names to target names")
        date_format = table.get("date_format")
        if date_format is not None and not isinstance(date_format, str):
            raise ConfigError(f"{path}: [ingest.{kind}].date_format must be text, e.g. '%d-%m-%Y'")
        ingest[kind.replace("_", "-")] = IngestSettings(dict(mapping), date_format)
    weights = _table(_table(raw, "dataset", path), "weights", path, "dataset.weights")
    try:
        # Event types are stored in lower case.
        weights = {str(k).lower(): float(v) for k, v in weights.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: [dataset.weights] values must be numbers") from None
    memory_limit = os.environ.get("TAILOR_MEMORY_LIMIT") or raw.get("memory_limit")
    if memory_limit is not None and not isinstance(memory_limit, str):
        raise ConfigError(f"{path}: memory_limit must be text such as '4GB'")
    named_models = os.environ.get("TAILOR_RECOMMENDERS")
    if named_models is not None:
        recommenders = tuple(n.strip() for n in named_models.split(",") if n.strip())
    else:
        recommenders = _table(raw, "build", path).get("recommenders")
        if recommenders is not None:
            if not isinstance(recommenders, list) or not all(
                isinstance(n, str) for n in recommenders
            ):
                raise ConfigError(f"{path}: [build] recommenders must be a list of names")
            recommenders = tuple(recommenders)
    return Settings(
        db=Path(db_path),
        ingest=ingest,
        weights=weights,
        memory_limit=memory_limit,
        recommenders=recommenders,
        source=source,
        privacy=_privacy(raw, path),
    )


def _privacy(raw: dict[str, Any], path: Path) -> PrivacySettings:
    """``[privacy]``: dp_budget (overridden by $TAILOR_DP_BUDGET), dp_bounds and the key files."""
    table = _table(raw, "privacy", path)
    budget = os.environ.get("TAILOR_DP_BUDGET", table.get("dp_budget", DEFAULT_DP_BUDGET))
    where = "$TAILOR_DP_BUDGET" if "TAILOR_DP_BUDGET" in os.environ else f"{path}: [privacy]"
    try:
        budget = float(budget) if not isinstance(budget, bool) else math.nan
    except (TypeError, ValueError):
        budget = math.nan
    if not (math.isfinite(budget) and budget > 0):
        raise ConfigError(f"{where} dp_budget must be a positive number such as 3.0")
    bounds = _table(table, "dp_bounds", path, "privacy.dp_bounds")
    for name, value in bounds.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"{path}: [privacy.dp_bounds] {name} must be a positive number")
    key_files = {}
    for name in ("encryption_key_file", "pseudonym_key_file"):
        value = table.get(name)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: [privacy] {name} must be a file name in quotes")
        # A relative name is read from the folder of tailor.toml, wherever Tailor runs.
        key_files[name] = None if value is None else path.parent / Path(value).expanduser()
    return PrivacySettings(budget, dict(bounds), **key_files)


def _table(raw: dict[str, Any], key: str, path: Path, name: str | None = None) -> dict[str, Any]:
    """The TOML table ``raw[key]`` ({} when absent); anything else is a ConfigError."""
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {name or key} must be a table, [{name or key}]")
    return value
