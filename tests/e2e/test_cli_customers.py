"""End-to-end runs of ``tailor customers``, ``segments``, ``clv``, ``churn`` and ``anomalies`` on
a generated shop built with ``tailor build``; answers are checked against the warehouse with
plain SQL and against the library called directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tailor.cli import app
from tailor.customers.intelligence import SUMMARY_COLUMNS
from tailor.customers.segments import RFM_SEGMENTS

CONTRACT = [
    "customer_id", "recency_days", "frequency", "monetary", "rfm_segment", "cluster", "clv",
    "p_alive", "churn_probability", "anomaly_score", "anomaly_reason",
]  # fmt: skip


def tailor(*args: str | Path | int, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def tailor_json(*args: str | Path | int):
    result = tailor(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sql(db: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query).fetchall()


@pytest.fixture(scope="module", autouse=True)
def in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A fresh folder, no settings from the environment, and only the quick recommenders (the
    customer analysis does not depend on which recommenders a build fits)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG"):
            mp.delenv(name, raising=False)
        mp.setenv("TAILOR_RECOMMENDERS", "popularity,personal_frequency")
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated shop of 300 customers over 240 days, built."""
    folder = tmp_path_factory.mktemp("shop")
    db = folder / "shop.duckdb"
    tailor_json("generate", folder / "files", "--db", db, "--customers", 300, "--items", 120,
                "--days", 240)  # fmt: skip
    tailor_json("build", "--db", db)
    return db


@pytest.fixture(scope="module")
def rows(db: Path) -> pd.DataFrame:
    return pd.DataFrame(tailor_json("customers", "--db", db))


def test_customers_has_the_contract_columns_one_row_per_customer(db: Path, rows: pd.DataFrame):
    assert list(rows.columns[: len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert set(CONTRACT) <= set(rows.columns)
    known = {r[0] for r in sql(db, "SELECT customer_id FROM customers UNION "
                                   "SELECT customer_id FROM events")}  # fmt: skip
    assert sorted(rows["customer_id"]) == sorted(known)


def test_rfm_figures_match_sql(db: Path, rows: pd.DataFrame):
    expected = pd.DataFrame(
        sql(
            db,
            "SELECT customer_id, count(DISTINCT basket_id), sum(value), "
            "(SELECT max(timestamp)::DATE FROM events) - max(timestamp)::DATE FROM events "
            "WHERE event_type = 'purchase' GROUP BY customer_id",
        ),
        columns=["customer_id", "frequency", "monetary", "recency_days"],
    ).set_index("customer_id")
    got = rows.set_index("customer_id").loc[expected.index]
    assert (got["frequency"] == expected["frequency"]).all()
    np.testing.assert_allclose(got["monetary"], expected["monetary"].astype(float), rtol=1e-6)
    assert (got["recency_days"] == expected["recency_days"]).all()


def test_every_score_is_in_range_and_explained(rows: pd.DataFrame):
    buyers = rows[rows["frequency"] > 0]
    assert set(rows["rfm_segment"]) <= set(RFM_SEGMENTS)
    assert buyers["churn_probability"].between(0, 1).all()
    assert buyers["p_alive"].between(0, 1).all()
    assert (buyers["clv"] >= 0).all()
    assert (rows["anomaly_score"] >= 0).all()
    for column in ("segment_reason", "clv_reason", "churn_reason"):
        assert buyers[column].str.len().gt(10).all(), column
    assert buyers["cluster"].ge(0).all()


def test_customers_output_file_equals_json(db: Path, rows: pd.DataFrame, tmp_path: Path):
    result = tailor("customers", "--db", db, "--output", tmp_path / "c.csv")
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "c.csv")
    assert len(written) == len(rows)
    np.testing.assert_allclose(written["clv"], rows["clv"], rtol=1e-9)


def test_another_churn_horizon_changes_the_probabilities(db: Path, rows: pd.DataFrame):
    other = pd.DataFrame(tailor_json("customers", "--db", db, "--churn-horizon-days", 14))
    assert list(other.columns) == list(rows.columns)
    buyers = rows["frequency"] > 0
    assert other.loc[buyers, "churn_probability"].between(0, 1).all()
    # Going 14 days without buying is likelier than going 28: lower churn on average.
    assert (
        other.loc[buyers, "churn_probability"].mean() > rows.loc[buyers, "churn_probability"].mean()
    )
    unchanged = rows.columns.drop(["churn_probability", "churn_reason"])
    pd.testing.assert_frame_equal(other[unchanged], rows[unchanged])


def test_segments_profiles_add_up(db: Path, rows: pd.DataFrame):
    data = tailor_json("segments", "--db", db)
    rfm = pd.DataFrame(data["rfm_segments"])
    assert rfm["size"].sum() == len(rows)
    assert rfm["revenue_share"].sum() == pytest.approx(1.0)
    counts = rows["rfm_segment"].value_counts()
    assert dict(zip(rfm["segment"], rfm["size"], strict=True)) == counts.to_dict()
    clusters = pd.DataFrame(data["clusters"])
    assert clusters["size"].sum() == (rows["cluster"] >= 0).sum()
    assert clusters["revenue_share"].is_monotonic_decreasing
    assert clusters["description"].str.len().gt(0).all()


def test_clv_reports_parameters_and_a_holdout(db: Path):
    last = sql(db, "SELECT max(timestamp)::DATE FROM events")[0][0]
    as_of = (pd.Timestamp(last) - pd.Timedelta(days=60)).date().isoformat()
    data = tailor_json("clv", "--db", db, "--as-of", as_of, "--horizon-days", 60)
    assert set(data["parameters"]) == {"r", "alpha", "a", "b", "p", "q", "gamma"}
    assert all(v > 0 for v in data["parameters"].values())
    holdout = data["holdout"]
    assert holdout is not None
    text = json.dumps(holdout)
    assert "predicted" in text and "actual" in text
    buyers_before = sql(
        db, f"SELECT count(DISTINCT customer_id) FROM events WHERE event_type = 'purchase' "
        f"AND timestamp < DATE '{as_of}' + 1"
    )[0][0]  # fmt: skip
    assert len(data["customers"]) == buyers_before


def test_churn_command_compares_with_baselines(db: Path):
    data = tailor_json("churn", "--db", db)
    models = {m["model"]: m for m in data["metrics"]}
    assert set(models) == {"model", "recency only", "frequency only", "spend only"}
    assert all(0 <= m["auc"] <= 1 for m in models.values())
    assert data["n_test"] > 0 and 0 < data["churn_rate"] < 1


def test_anomalies_lists_flags_with_reasons(db: Path):
    flags = tailor_json("anomalies", "--db", db)
    for flag in flags:
        assert flag["reason"] and flag["score"] > 0


def test_build_manifest_carries_the_customer_summary(db: Path):
    manifest = tailor_json("build", "--db", db)
    summary = manifest["customers"]
    assert summary["churn_horizon_days"] == 28
    assert {"features", "segments", "lifetime value", "churn"} <= set(summary["steps"])


def test_customers_without_a_build_is_a_clear_error(tmp_path: Path):
    result = tailor("customers", "--db", tmp_path / "none.duckdb")
    assert result.exit_code == 1
    assert "tailor build" in result.stderr


def test_a_ratings_only_shop_builds_without_customer_intelligence(tmp_path: Path):
    """Rating data has no purchases: the build publishes its recommenders and says why the
    customer analysis was skipped; `tailor customers` says there is none."""
    db = tmp_path / "ratings.duckdb"
    tailor_json("generate", tmp_path / "files", "--ratings", "--db", db, "--customers", 80,
                "--items", 40)  # fmt: skip
    manifest = tailor_json("build", "--db", db)
    assert manifest["customers"] == {"skipped": "customer intelligence: no purchases before as_of"}
    result = tailor("customers", "--db", db)
    assert result.exit_code == 1 and "no customer intelligence" in result.stderr
