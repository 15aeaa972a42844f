"""A generated shop, built, with one API key per role, served in-process by TestClient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tailor.cli import app as cli
from tailor.serve import ServeSettings, create_app
from tailor.serve.auth import create_key
from tailor.store import Warehouse

FAST = "popularity,personal_frequency"
OPTED_OUT = (1, 2)
"""Customers of the shop who opted out of marketing."""


def tailor_json(*args: str | Path | int) -> dict:
    result = CliRunner().invoke(cli, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A warehouse (60 customers, 80 items, 120 days) and its build."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_CORS_ORIGINS"):
            mp.delenv(name, raising=False)
        mp.setenv("TAILOR_RECOMMENDERS", FAST)
        folder = tmp_path_factory.mktemp("shop")
        mp.chdir(folder)
        db = folder / "shop.duckdb"
        tailor_json("generate", folder / "files", "--db", db, "--customers", 60, "--items", 80,
                    "--days", 120)  # fmt: skip
        plan_campaign(folder, db)
        opt_out_of_marketing(folder, db, OPTED_OUT)
        tailor_json("build", "--db", db)
        yield db


def plan_campaign(folder: Path, db: Path, campaign_id: int = 99) -> None:
    """Ingest a campaign that starts the day after the data ends, with two coupons on five items
    each, so that the build has an open campaign to score."""
    with Warehouse(db, read_only=True) as wh:
        last = wh.con.execute("SELECT max(timestamp) FROM events").fetchone()[0]
        items = [
            r[0] for r in wh.con.execute("SELECT item_id FROM items ORDER BY 1 LIMIT 10").fetchall()
        ]
    start = pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
    pd.DataFrame(
        {
            "campaign_id": [campaign_id],
            "type": ["B"],
            "start": [start],
            "end": [start + pd.Timedelta(days=20)],
        }
    ).to_csv(folder / "planned.csv", index=False)
    pd.DataFrame(
        {"offer_id": [990] * 5 + [991] * 5, "campaign_id": campaign_id, "item_id": items}
    ).to_csv(folder / "planned_offers.csv", index=False)
    tailor_json("ingest", "campaigns", folder / "planned.csv", "--db", db)
    tailor_json("ingest", "offers", folder / "planned_offers.csv", "--db", db)


@pytest.fixture(scope="module")
def opted_out() -> tuple[int, ...]:
    """Customers of ``shop`` who opted out of marketing."""
    return OPTED_OUT


@pytest.fixture(scope="module")
def keys(shop: Path) -> dict[str, str]:
    with Warehouse(shop) as wh:
        return {role: create_key(wh, role) for role in ("read", "write", "admin")}


@pytest.fixture(scope="module")
def client(shop: Path, keys: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(ServeSettings(shop, cors_origins=("https://shop.example",)))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def as_role(keys: dict[str, str]) -> dict[str, dict[str, str]]:
    """Request headers per role: ``as_role["write"]``."""
    return {role: {"X-API-Key": key} for role, key in keys.items()}


def opt_out_of_marketing(folder: Path, db: Path, customers: tuple[int, ...]) -> None:
    pd.DataFrame({"customer_id": customers, "consent_marketing": False}).to_csv(
        folder / "consent.csv", index=False
    )
    tailor_json("ingest", "customers", folder / "consent.csv", "--db", db)
