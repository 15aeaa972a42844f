"""End to end: ``tailor forget`` removes a customer from every file of the warehouse and its
builds, and lists answer for them as for a stranger.

The shop's customer ids are text, the forgotten one distinctive, so that a byte search of every
file finds it wherever it is stored in the clear (Parquet dictionaries, pickled arrays, the
DuckDB file); the search is shown to find it before the erasure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tailor.cli import app
from tailor.synthetic import generate, write

VICTIM = "ERASE-ME-QX7Z"
NEIGHBOUR = "shopper-0002"


def tailor(*args: str | Path | int):
    return CliRunner().invoke(app, [str(a) for a in args])


def tailor_json(*args: str | Path | int):
    result = tailor(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def files_holding(folder: Path, text: str) -> list[str]:
    needle = text.encode()
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and needle in p.read_bytes()
    )


@pytest.fixture(scope="module", autouse=True)
def in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_RECOMMENDERS", "TAILOR_AUDIT_KEY"):
            mp.delenv(name, raising=False)
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A generated shop (text customer ids, customer 1 is VICTIM, who opted out of marketing)
    built twice (two builds on disk, the current one with every recommender); then VICTIM
    forgotten."""
    folder = tmp_path_factory.mktemp("shop")
    data = generate(n_customers=80, n_items=60, days=120, seed=3)
    names = {n: VICTIM if n == 1 else f"shopper-{n:04d}" for n in range(1, 81)}
    renamed = {}
    for table in ("events", "customers", "campaign_members", "redemptions"):
        frame = getattr(data, table).copy()
        frame["customer_id"] = frame["customer_id"].map(names)
        renamed[table] = frame
    # The input files are the retailer's own exports, not Tailor's: outside the searched folder.
    files = write(replace(data, **renamed), tmp_path_factory.mktemp("exports"), fmt="parquet")
    db = folder / "shop.duckdb"
    for kind, path in files.items():
        tailor_json("ingest", kind.replace("_", "-"), path, "--db", db)
    tailor_json("consent", "set", VICTIM, "--marketing", "no", "--db", db)
    with pytest.MonkeyPatch.context() as mp:  # an older build: a quick one will do
        mp.setenv("TAILOR_RECOMMENDERS", "popularity")
        tailor_json("build", "--db", db)
    tailor_json("build", "--db", db)  # every recommender
    stranger = tailor_json("recommend", "--customer", "NEVER-SEEN", "--k", 5, "--db", db)
    before = {
        "files": files_holding(folder, VICTIM),
        "neighbour": tailor_json("recommend", "--customer", NEIGHBOUR, "--k", 5, "--db", db),
        "stranger": stranger,
    }
    erased = tailor_json("forget", VICTIM, "--db", db)
    return {"db": db, "folder": folder, "before": before, "erased": erased}


def test_the_search_finds_the_customer_before(shop):
    found = shop["before"]["files"]
    assert "shop.duckdb" in found
    assert any(f.endswith("dataset.pkl") for f in found)
    assert any(f.endswith("customer_ids.npy") for f in found)
    assert any(f.endswith("opt_outs.parquet") for f in found)


def test_no_file_holds_the_customer_after(shop):
    assert files_holding(shop["folder"], VICTIM) == []
    # The warehouse and the build are still there and whole.
    assert (shop["folder"] / "shop.duckdb").exists()
    builds = [p for p in (shop["folder"] / "shop.builds").iterdir() if p.is_dir()]
    assert [p.name for p in builds] == [shop["erased"]["build_id"]]


def test_forget_reports_what_it_did(shop):
    erased = shop["erased"]
    assert erased["held"] is True
    assert erased["warehouse_rows"]["events"] > 0
    assert erased["warehouse_rows"]["customers"] == 1
    assert erased["builds_deleted"] == 2
    assert set(erased["retrain_pending"]) >= {"als", "bpr", "ease", "hybrid", "item_knn"}
    assert VICTIM not in json.dumps(erased)
    manifest = json.loads(
        (shop["folder"] / "shop.builds" / erased["build_id"] / "manifest.json").read_text()
    )
    assert manifest["erasure"]["retrain_pending"] == sorted(erased["retrain_pending"])
    assert manifest["dataset"]["customers"] == 79


def test_the_forgotten_customer_gets_a_strangers_list(shop):
    db = shop["db"]
    now = tailor_json("recommend", "--customer", VICTIM, "--k", 5, "--db", db)
    stranger = tailor_json("recommend", "--customer", "NEVER-SEEN", "--k", 5, "--db", db)
    assert [r["item_id"] for r in now] == [r["item_id"] for r in stranger]
    assert {r["reason"] for r in now} == {r["reason"] for r in stranger}


def test_others_keep_their_lists(shop):
    now = tailor_json("recommend", "--customer", NEIGHBOUR, "--k", 5, "--db", shop["db"])
    assert len(now) == 5
    assert pd.DataFrame(now)["customer_id"].eq(NEIGHBOUR).all()


def test_the_audit_log_proves_it_without_naming_anyone(shop):
    db = shop["db"]
    check = tailor_json("forget", VICTIM, "--check", "--db", db)
    assert check["forgotten"] is True
    assert check["subject"] == shop["erased"]["subject"]
    assert tailor_json("forget", NEIGHBOUR, "--check", "--db", db) == {"forgotten": False}
    log = tailor_json("forget", "--log", "--db", db)
    assert len(log) == 1 and VICTIM not in json.dumps(log)


def test_forgetting_again_holds_nothing_and_exits_zero(shop):
    again = tailor_json("forget", VICTIM, "--db", shop["db"])
    assert again["held"] is False
    assert again["warehouse_rows"] == {}
    assert files_holding(shop["folder"], VICTIM) == []
