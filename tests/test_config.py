"""Tests for tailor.config: where each setting comes from, and errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailor.cli import app
from tailor.config import DEFAULT_DB, IngestSettings, load_settings
from tailor.errors import ConfigError
from tailor.store import Warehouse

TOML = """
db = "from-toml.duckdb"

[ingest.events]
date_format = "%d-%m-%Y %H:%M"
map = { uid = "customer_id", mid = "item_id", when = "timestamp" }

[ingest.campaign_members]
map = { hh = "customer_id" }

[dataset.weights]
purchase = 2
View = 0.25
"""


@pytest.fixture(autouse=True)
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in an empty folder with no Tailor variables set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAILOR_DB", raising=False)
    monkeypatch.delenv("TAILOR_CONFIG", raising=False)
    monkeypatch.delenv("TAILOR_MEMORY_LIMIT", raising=False)
    return tmp_path


def test_defaults():
    settings = load_settings()
    assert settings.db == Path(DEFAULT_DB)
    assert settings.ingest == {} and settings.weights == {} and settings.source is None
    assert settings.ingest_for("events") == IngestSettings()


def test_db_precedence(here: Path, monkeypatch: pytest.MonkeyPatch):
    (here / "tailor.toml").write_text(TOML)
    assert load_settings().db == Path("from-toml.duckdb")
    monkeypatch.setenv("TAILOR_DB", "from-env.duckdb")
    assert load_settings().db == Path("from-env.duckdb")
    assert load_settings(db="from-cli.duckdb").db == Path("from-cli.duckdb")
    assert load_settings(db=Path("cli.duckdb")).db == Path("cli.duckdb")


def test_tables_parsed(here: Path):
    (here / "tailor.toml").write_text(TOML)
    settings = load_settings()
    assert settings.source == Path("tailor.toml")
    assert settings.ingest_for("events") == IngestSettings(
        {"uid": "customer_id", "mid": "item_id", "when": "timestamp"}, "%d-%m-%Y %H:%M"
    )
    # TOML keys use _, kinds use -
    assert settings.ingest_for("campaign-members").mapping == {"hh": "customer_id"}
    assert settings.ingest_for("items") == IngestSettings()
    assert settings.weights == {"purchase": 2.0, "view": 0.25}


def test_config_named_by_option_or_environment(here: Path, monkeypatch: pytest.MonkeyPatch):
    (here / "other.toml").write_text('db = "other.duckdb"\n')
    (here / "tailor.toml").write_text(TOML)
    assert load_settings(config="other.toml").db == Path("other.duckdb")
    monkeypatch.setenv("TAILOR_CONFIG", "other.toml")
    assert load_settings().db == Path("other.duckdb")
    assert load_settings().source == Path("other.toml")


def test_missing_named_config(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found"):
        load_settings(config="missing.toml")
    monkeypatch.setenv("TAILOR_CONFIG", "gone.toml")
    with pytest.raises(ConfigError, match=r"gone\.toml: config file not found"):
        load_settings()


def test_invalid_toml_names_the_file(here: Path):
    (here / "tailor.toml").write_text('db = "unterminated\n')
    with pytest.raises(ConfigError, match=r"tailor\.toml: not valid TOML"):
        load_settings()
    (here / "latin.toml").write_bytes('db = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.toml: not valid TOML"):
        load_settings(config="latin.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ingest]\nevents = 3\n", r"\[ingest.events\] must be a table"),
        ("[ingest.evnts]\nmap = {}\n", r"\[ingest.evnts\]: unknown kind"),
        ("[ingest.events]\nmap = { uid = 1 }\n", r"\[ingest.events\].map must map"),
        ('[ingest.events]\nmap = ["uid"]\n', r"\[ingest.events\].map must map"),
        ("[ingest.events]\ndate_format = 5\n", r"date_format must be text"),
        ('[dataset.weights]\npurchase = "a lot"\n', r"\[dataset.weights\] values must be numbers"),
        ("[dataset]\nweights = 1\n", r"dataset.weights must be a table"),
        ("dataset = 1\n", r"dataset must be a table"),
        ("db = 5\n", r"db must be a file name"),
    ],
)
def test_bad_settings_name_the_file(here: Path, text: str, message: str):
    (here / "tailor.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"tailor\.toml: .*" + message):
        load_settings()


# --- through the CLI ---------------------------------------------------------------------------


def test_cli_ingest_uses_tailor_toml(here: Path):
    (here / "tailor.toml").write_text(TOML)
    (here / "events.csv").write_text("uid,mid,when\n1,10,02-03-2024 10:30\n2,11,13-03-2024 08:00\n")
    result = CliRunner().invoke(app, ["ingest", "events", "events.csv", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["rows_inserted"] == 2
    with Warehouse(here / "from-toml.duckdb", read_only=True) as wh:
        rows = wh.con.execute(
            "SELECT customer_id, item_id, strftime(timestamp, '%Y-%m-%d %H:%M') FROM events "
            "ORDER BY 1"
        ).fetchall()
    assert rows == [(1, 10, "2024-03-02 10:30"), (2, 11, "2024-03-13 08:00")]


def test_cli_reports_config_errors_on_one_line(here: Path):
    result = CliRunner().invoke(app, ["stats", "--config", "missing.toml"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: missing.toml: config file not found"
    (here / "tailor.toml").write_text("db = [")
    result = CliRunner().invoke(app, ["stats"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: tailor.toml: not valid TOML")
    assert len(result.stderr.strip().splitlines()) == 1


def test_memory_limit_reaches_duckdb(here: Path, monkeypatch: pytest.MonkeyPatch):
    (here / "tailor.toml").write_text('memory_limit = "512MB"\n')
    assert load_settings().memory_limit == "512MB"
    monkeypatch.setenv("TAILOR_MEMORY_LIMIT", "1GB")
    settings = load_settings()
    assert settings.memory_limit == "1GB"
    with Warehouse(here / "w.duckdb", memory_limit=settings.memory_limit) as wh:
        limit = wh.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "") in ("1.0GiB", "953.6MiB", "1GB", "1000.0MB")


def test_bad_memory_limit_is_one_line(here: Path, monkeypatch: pytest.MonkeyPatch):
    Warehouse(here / "w.duckdb").close()
    monkeypatch.setenv("TAILOR_MEMORY_LIMIT", "lots")
    result = CliRunner().invoke(app, ["stats", "--db", str(here / "w.duckdb")])
    assert result.exit_code == 1
    assert "memory_limit 'lots'" in result.output
