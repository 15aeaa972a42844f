"""The ``dp`` section of the HTTP API: ``POST /v1/privacy/dp/report`` spends ε and returns the
noisy figures, ``GET /v1/privacy/ledger`` shows what was spent; admin keys only; a request over
the budget is a 409 that spends nothing."""

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


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict]]:
    """A generated shop (no build: the release reads the warehouse) served with a budget of 2."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_CORS_ORIGINS"):
            mp.delenv(name, raising=False)
        mp.setenv("TAILOR_DP_BUDGET", "2")
        folder = tmp_path_factory.mktemp("dp_shop")
        mp.chdir(folder)
        db = folder / "shop.duckdb"
        result = CliRunner().invoke(
            cli, ["generate", str(folder / "files"), "--db", str(db), "--customers", "50",
                  "--items", "50", "--days", "70", "--json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        with Warehouse(db) as wh:
            keys = {role: {"X-API-Key": create_key(wh, role)} for role in ("read", "admin")}
        with TestClient(create_app(ServeSettings(Path(db)))) as client:
            yield client, keys


def test_dp_report_and_ledger(served):
    client, keys = served
    empty = client.get("/v1/privacy/ledger", headers=keys["admin"])
    assert empty.status_code == 200, empty.text
    assert empty.json()["spent"] == 0 and empty.json()["budget"] == 2

    answer = client.post("/v1/privacy/dp/report", json={"epsilon": 1.5}, headers=keys["admin"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["epsilon"] == pytest.approx(1.5)
    assert body["spent"] == pytest.approx(1.5) and body["remaining"] == pytest.approx(0.5)
    figures = body["figures"]
    assert figures["department_sales"]["scale"] == pytest.approx(40 * 25.0 / 0.75)
    assert figures["segment_sizes"]["scale"] == pytest.approx(1 / 0.15)
    assert sum(f["share"] for f in figures.values()) == pytest.approx(1.0)
    assert {"week", "department", "revenue"} <= set(body["department_sales"][0])
    assert {"start", "end", "baskets", "revenue", "avg_basket_value"} <= set(body["baskets"][0])
    assert len(body["segments"]) == 11

    before = client.get("/v1/privacy/ledger", headers=keys["admin"]).json()
    refused = client.post("/v1/privacy/dp/report", json={"epsilon": 1.0}, headers=keys["admin"])
    assert refused.status_code == 409
    assert "over its budget of 2 (1.5 spent); nothing was spent" in refused.json()["detail"]
    after = client.get("/v1/privacy/ledger", headers=keys["admin"]).json()
    assert after == before
    assert after["entries"][0]["channel"] == "api"
    assert after["entries"][0]["epsilon"] == pytest.approx(1.5)
    assert sum(after["entries"][0]["detail"].values()) == pytest.approx(1.5)


@pytest.mark.parametrize(
    "body",
    [
        {"epsilon": 0}, {"epsilon": -1}, {"epsilon": 1e-300}, {"epsilon": 1e9}, {},
        {"epsilon": 1, "extra": 1}, {"epsilon": "x"}, {"epsilon": 1, "as_of": "9999-12-31"},
        {"epsilon": 1, "as_of": "0001-01-01"},
    ],
)  # fmt: skip
def test_bad_requests_are_422_and_spend_nothing(served, body):
    client, keys = served
    before = client.get("/v1/privacy/ledger", headers=keys["admin"]).json()
    answer = client.post("/v1/privacy/dp/report", json=body, headers=keys["admin"])
    assert answer.status_code == 422
    assert client.get("/v1/privacy/ledger", headers=keys["admin"]).json() == before


def test_no_sales_before_as_of_is_422(served):
    client, keys = served
    answer = client.post(
        "/v1/privacy/dp/report", json={"epsilon": 0.1, "as_of": "1990-01-01"},
        headers=keys["admin"],
    )  # fmt: skip
    assert answer.status_code == 422
    assert "no purchases up to 1990-01-01" in answer.json()["detail"]


def test_admin_only(served):
    client, keys = served
    for method, path, body in (
        ("post", "/v1/privacy/dp/report", {"epsilon": 0.1}),
        ("get", "/v1/privacy/ledger", None),
    ):
        kwargs = {"json": body} if body else {}
        assert getattr(client, method)(path, **kwargs).status_code == 401
        read = getattr(client, method)(path, headers=keys["read"], **kwargs)
        assert read.status_code == 403
        assert "admin key" in json.loads(read.text)["detail"]
