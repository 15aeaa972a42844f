"""End-to-end runs of ``tailor ingest`` and ``tailor stats``: in-process with Typer's CliRunner
and as the installed ``tailor`` executable (exit codes, JSON on stdout, one-line errors)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailor.cli import app
from tailor.store import KINDS, Warehouse

MAP = ["--map", "uid=customer_id", "--map", "mid=item_id", "--map", "when=timestamp"]
MAP_STARS = [*MAP, "--map", "stars=value"]
EPOCH_EVENTS = "uid,mid,when,stars\n1,10,1500000000,5\n2,11,1500000060,3\n"
# The executable installed beside this interpreter (the venv's), else the one on PATH.
TAILOR = shutil.which("tailor", path=str(Path(sys.executable).parent)) or shutil.which("tailor")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path with no Tailor settings from the environment."""
    monkeypatch.delenv("TAILOR_DB", raising=False)
    monkeypatch.delenv("TAILOR_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "w.duckdb"


def tailor(*args: str | Path):
    """Run the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def tailor_exe(*args: str | Path, cwd: Path, env: dict | None = None):
    """Run the installed ``tailor`` executable."""
    clean = {k: v for k, v in os.environ.items() if k not in ("TAILOR_DB", "TAILOR_CONFIG")}
    return subprocess.run(
        [TAILOR, *map(str, args)],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def events(db: Path, *columns: str) -> list[tuple]:
    with Warehouse(db, read_only=True) as wh:
        names = ", ".join(columns)
        return wh.con.execute(f"SELECT {names} FROM events ORDER BY ALL").fetchall()


def snapshot(db: Path) -> dict:
    with Warehouse(db, read_only=True) as wh:
        return {s.table: (wh.columns(s.table), wh.table_digest(s.table)) for s in KINDS.values()}


def stats_json(db: Path) -> dict:
    result = tailor("stats", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- the contract -----------------------------------------------------------------------------


def test_ingest_mapped_columns_with_epoch_seconds(tmp_path, db):
    path = tmp_path / "e.csv"
    path.write_text(EPOCH_EVENTS)
    result = tailor("ingest", "events", path, *MAP_STARS, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert report["file"] == str(path)
    assert (report["rows_read"], report["rows_inserted"], report["rows_rejected"]) == (2, 2, 0)
    assert events(db, "customer_id", "item_id", "timestamp", "value") == [
        (1, 10, datetime(2017, 7, 14, 2, 40), 5.0),
        (2, 11, datetime(2017, 7, 14, 2, 41), 3.0),
    ]


def test_date_format_is_day_first(tmp_path, db):
    path = tmp_path / "e.csv"
    path.write_text("uid,mid,date\n1,10,03-04-2017\n")
    result = tailor(
        "ingest", "events", path, "--map", "uid=customer_id", "--map", "mid=item_id",
        "--map", "date=timestamp", "--date-format", "%d-%m-%Y", "--db", db,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert events(db, "timestamp") == [(datetime(2017, 4, 3),)]


def test_same_file_twice_leaves_event_count_unchanged(tmp_path, db):
    path = tmp_path / "e.csv"
    path.write_text(EPOCH_EVENTS)
    assert tailor("ingest", "events", path, *MAP_STARS, "--db", db).exit_code == 0
    once = stats_json(db)
    result = tailor("ingest", "events", path, *MAP_STARS, "--db", db, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["rows_inserted"] == 0
    twice = stats_json(db)
    assert once["events"] == twice["events"] == 2
    assert twice == once


def test_bad_timestamp_names_file_column_and_line_and_changes_nothing(tmp_path, db):
    good = tmp_path / "good.csv"
    good.write_text(EPOCH_EVENTS)
    assert tailor("ingest", "events", good, *MAP_STARS, "--db", db).exit_code == 0
    before = snapshot(db)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "uid,mid,when\n"
        "7,70,1500000000\n"  # line 2
        "8,80,1500000000\n"  # line 3
        "9,90,yesterday\n"  # line 4
        "10,100,1500000000\n"
    )
    result = tailor("ingest", "events", bad, *MAP, "--db", db)
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert message.startswith("error: ")
    assert str(bad) in message
    assert "'when'" in message
    assert "line 4" in message
    assert "'yesterday'" in message
    assert result.stdout == ""
    assert snapshot(db) == before


def test_skip_invalid_from_the_cli(tmp_path, db):
    path = tmp_path / "e.csv"
    path.write_text("uid,mid,when\n1,10,1500000000\n2,20,soon\n")
    result = tailor("ingest", "events", path, *MAP, "--skip-invalid", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert (report["rows_inserted"], report["rows_rejected"]) == (1, 1)
    assert report["rejects_file"] == str(path) + ".rejects.csv"
    assert Path(report["rejects_file"]).read_text().splitlines()[1].startswith("3,when,")


def test_table_output_without_json(tmp_path, db):
    path = tmp_path / "e.csv"
    path.write_text(EPOCH_EVENTS)
    result = tailor("ingest", "events", path, *MAP_STARS, "--db", db)
    assert result.exit_code == 0
    assert "inserted" in result.stdout
    stats = tailor("stats", "--db", db)
    assert stats.exit_code == 0
    assert "events" in stats.stdout
    assert "2017-07-14" in stats.stdout


def test_several_files_in_one_call(tmp_path, db):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("customer_id,item_id,timestamp\n1,2,2017-01-01\n")
    b.write_text("customer_id,item_id,timestamp\n1,2,2017-01-01\n3,4,2017-01-02\n")
    result = tailor("ingest", "events", a, b, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    assert [r["rows_inserted"] for r in json.loads(result.stdout)] == [1, 1]


# -- user errors ------------------------------------------------------------------------------


def test_stats_on_a_missing_warehouse(tmp_path):
    result = tailor("stats", "--db", tmp_path / "absent.duckdb")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "absent.duckdb" in lines[0]
    assert "no warehouse here" in lines[0]
    assert not (tmp_path / "absent.duckdb").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ingest", "sales", "e.csv"], "unknown kind 'sales'"),
        (["ingest", "events", "e.csv", "--map", "uid"], "write it as SOURCE=TARGET"),
        (["ingest", "events", "e.csv", "--map", "nope=customer_id"], "no column 'nope'"),
        (["ingest", "events", "absent.csv"], "no such file"),
        (["ingest", "events", "e.csv", "--config", "absent.toml"], "config file not found"),
    ],
)
def test_user_errors_are_one_line(tmp_path, db, args, expected):
    (tmp_path / "e.csv").write_text(EPOCH_EVENTS)
    result = tailor(*args, "--db", db)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert expected in lines[0]


def test_newer_warehouse_is_refused_by_the_cli(tmp_path, db):
    with Warehouse(db) as wh:
        wh.set_meta("schema_version", "99")
    result = tailor("stats", "--db", db)
    assert result.exit_code == 1
    assert "newer Tailor" in result.stderr


# -- settings: tailor.toml and the environment ------------------------------------------------

CONFIG = """
[ingest.events]
map = { uid = "customer_id", mid = "item_id", date = "timestamp" }
date_format = "%d-%m-%Y"
"""
DAY_FIRST = "uid,mid,date\n1,10,03-04-2017\n2,11,31-12-2016\n"


def test_tailor_toml_in_the_working_directory(tmp_path, db):
    (tmp_path / "tailor.toml").write_text(CONFIG)
    (tmp_path / "e.csv").write_text(DAY_FIRST)
    result = tailor("ingest", "events", "e.csv", "--db", db)
    assert result.exit_code == 0, result.output
    assert events(db, "customer_id", "item_id", "timestamp") == [
        (1, 10, datetime(2017, 4, 3)),
        (2, 11, datetime(2016, 12, 31)),
    ]


def test_config_option_names_the_settings_file(tmp_path, db):
    settings = tmp_path / "settings" / "shop.toml"
    settings.parent.mkdir()
    settings.write_text(CONFIG)
    (tmp_path / "e.csv").write_text(DAY_FIRST)
    result = tailor("ingest", "events", "e.csv", "--db", db, "--config", settings)
    assert result.exit_code == 0, result.output
    assert events(db, "timestamp") == [(datetime(2016, 12, 31),), (datetime(2017, 4, 3),)]


def test_tailor_config_env_var_names_the_settings_file(tmp_path, db, monkeypatch):
    settings = tmp_path / "elsewhere.toml"
    settings.write_text(CONFIG)
    monkeypatch.setenv("TAILOR_CONFIG", str(settings))
    (tmp_path / "e.csv").write_text(DAY_FIRST)
    assert tailor("ingest", "events", "e.csv", "--db", db).exit_code == 0
    assert len(events(db, "timestamp")) == 2


def test_cli_map_overrides_the_config(tmp_path, db):
    (tmp_path / "tailor.toml").write_text(CONFIG)
    (tmp_path / "e.csv").write_text("uid,client,mid,date\n1,901,10,03-04-2017\n")
    result = tailor("ingest", "events", "e.csv", "--map", "client=customer_id", "--db", db)
    assert result.exit_code == 0, result.output
    # client is the customer; the config's uid is then kept as a plain attribute.
    assert events(db, "customer_id", "uid", "timestamp") == [(901, 1, datetime(2017, 4, 3))]


def test_cli_date_format_overrides_the_config(tmp_path, db):
    (tmp_path / "tailor.toml").write_text(CONFIG)
    (tmp_path / "e.csv").write_text("uid,mid,date\n1,10,04/03/2017\n")
    result = tailor("ingest", "events", "e.csv", "--date-format", "%m/%d/%Y", "--db", db)
    assert result.exit_code == 0, result.output
    assert events(db, "timestamp") == [(datetime(2017, 4, 3),)]


def test_config_mapping_for_an_absent_column_is_ignored(tmp_path, db):
    (tmp_path / "tailor.toml").write_text(CONFIG)
    (tmp_path / "e.csv").write_text("customer_id,item_id,timestamp\n1,10,2017-04-03\n")
    result = tailor("ingest", "events", "e.csv", "--date-format", "%Y-%m-%d", "--db", db)
    assert result.exit_code == 0, result.output
    assert events(db, "customer_id", "timestamp") == [(1, datetime(2017, 4, 3))]


def test_db_from_tailor_toml(tmp_path):
    (tmp_path / "tailor.toml").write_text('db = "shop.duckdb"\n')
    (tmp_path / "e.csv").write_text("customer_id,item_id,timestamp\n1,10,2017-04-03\n")
    assert tailor("ingest", "events", "e.csv").exit_code == 0
    assert events(tmp_path / "shop.duckdb", "customer_id") == [(1,)]


def test_tailor_db_env_var_picks_the_warehouse(tmp_path, monkeypatch):
    target = tmp_path / "from_env.duckdb"
    monkeypatch.setenv("TAILOR_DB", str(target))
    (tmp_path / "tailor.toml").write_text('db = "ignored.duckdb"\n')  # the env var wins
    (tmp_path / "e.csv").write_text("customer_id,item_id,timestamp\n1,10,2017-04-03\n")
    assert tailor("ingest", "events", "e.csv").exit_code == 0
    assert target.exists()
    assert not (tmp_path / "ignored.duckdb").exists()
    assert not (tmp_path / "tailor.duckdb").exists()
    result = tailor("stats", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["events"] == 1


def test_db_option_beats_the_env_var(tmp_path, db, monkeypatch):
    monkeypatch.setenv("TAILOR_DB", str(tmp_path / "from_env.duckdb"))
    (tmp_path / "e.csv").write_text("customer_id,item_id,timestamp\n1,10,2017-04-03\n")
    assert tailor("ingest", "events", "e.csv", "--db", db).exit_code == 0
    assert db.exists()
    assert not (tmp_path / "from_env.duckdb").exists()


def test_invalid_toml_is_a_one_line_error(tmp_path, db):
    (tmp_path / "tailor.toml").write_text("[ingest.events\n")
    (tmp_path / "e.csv").write_text(EPOCH_EVENTS)
    result = tailor("ingest", "events", "e.csv", "--db", db)
    assert result.exit_code == 1
    assert "not valid TOML" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- the real executable ----------------------------------------------------------------------


def test_executable_ingest_and_stats_json(tmp_path):
    (tmp_path / "e.csv").write_text(EPOCH_EVENTS)
    args = ("ingest", "events", "e.csv", *MAP_STARS, "--db", "w.duckdb", "--json")
    done = tailor_exe(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout)
    assert report["rows_inserted"] == 2
    stats = tailor_exe("stats", "--json", cwd=tmp_path, env={"TAILOR_DB": "w.duckdb"})
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert (data["events"], data["customers"], data["items"]) == (2, 2, 2)
    assert data["first_event"] == "2017-07-14T02:40:00"
    assert data["event_types"] == {"purchase": 2}


def test_executable_user_error_is_one_line_without_traceback(tmp_path):
    (tmp_path / "bad.csv").write_text("uid,mid,when\n1,10,1500000000\n2,11,1500000000\n3,12,x\n")
    done = tailor_exe("ingest", "events", "bad.csv", *MAP, "--db", "w.duckdb", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: bad.csv: column 'when': line 4: ")
    assert "Traceback" not in done.stderr


def test_executable_debug_shows_the_traceback(tmp_path):
    (tmp_path / "bad.csv").write_text("uid,mid,when\n1,10,1500000000\n2,11,1500000000\n3,12,x\n")
    args = ("ingest", "events", "bad.csv", *MAP, "--db", "w.duckdb", "--debug")
    done = tailor_exe(*args, cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr
    assert "tailor.errors.InputError: bad.csv: column 'when': line 4" in done.stderr


def test_executable_stats_on_a_missing_warehouse(tmp_path):
    done = tailor_exe("stats", "--db", "absent.duckdb", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: absent.duckdb: no warehouse here; load data with `tailor ingest` or `tailor demo`"
    )
    assert not (tmp_path / "absent.duckdb").exists()
