"""A generated shop, built, with one API key per role, served in-process by TestClient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tailor.cli import app as cli
from tailor.serve import ServeSettings, create_app
from tailor.serve.auth import create_key
from tailor.store import Warehouse

FAST = "popularity,personal_frequency"


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
        tailor_json("build", "--db", db)
        yield db


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
