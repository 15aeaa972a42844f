"""End-to-end runs of ``tailor offers`` and ``tailor service`` on a generated shop: built once
without an open campaign (the error that says what to load), then with a planned campaign and a
customer who opted out of marketing, built again; answers are checked against the warehouse with
plain SQL and against one another."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from tailor.cli import app

CONTRACT = ["customer_id", "campaign_id", "offer_id", "probability", "expected_value", "reason"]
PLANNED = 99
OPTED_OUT = 5


def tailor(*args: str | Path | int):
    return CliRunner().invoke(app, [str(a) for a in args])


def tailor_json(*args: str | Path | int):
    result = tailor(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sql(db: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query).fetchall()


@pytest.fixture(scope="module", autouse=True)
def in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A fresh folder, no settings from the environment, and only the quick recommenders."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG"):
            mp.delenv(name, raising=False)
        mp.setenv("TAILOR_RECOMMENDERS", "popularity,personal_frequency")
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A generated shop of 200 customers over 200 days (4 past campaigns, none open at the
    end), built; then campaign 99 planned to start 3 days after the last day with coupons on
    the three most bought items, customer 5 opted out, and built again."""
    folder = tmp_path_factory.mktemp("shop")
    db = folder / "shop.duckdb"
    tailor_json("generate", folder / "files", "--db", db, "--customers", 200, "--items", 60,
                "--days", 200)  # fmt: skip
    tailor_json("build", "--db", db)
    before = {
        "offers": tailor("offers", "--db", db),
        "evaluation": tailor("offers", "--db", db, "--evaluation", "--json"),
    }
    (last,) = sql(db, "SELECT max(timestamp)::DATE FROM events")[0]
    most_bought = sql(db, "SELECT item_id FROM events WHERE event_type = 'purchase' "
                          "GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT 3")  # fmt: skip
    top = [row[0] for row in most_bought]
    start = pd.Timestamp(last) + pd.Timedelta(days=3)
    campaigns = folder / "planned.csv"
    pd.DataFrame(
        {"campaign_id": [PLANNED], "type": ["A"], "name": ["Summer"], "start": [start],
         "end": [start + pd.Timedelta(days=14)]}
    ).to_csv(campaigns, index=False)  # fmt: skip
    offers = folder / "planned_offers.csv"
    pd.DataFrame(
        {"offer_id": [991, 991, 992], "campaign_id": [PLANNED] * 3, "item_id": top}
    ).to_csv(offers, index=False)
    consent = folder / "consent.csv"
    consent.write_text(f"customer_id,consent_marketing\n{OPTED_OUT},false\n")
    tailor_json("ingest", "campaigns", campaigns, "--db", db)
    tailor_json("ingest", "offers", offers, "--db", db)
    tailor_json("ingest", "customers", consent, "--db", db)
    manifest = tailor_json("build", "--db", db)
    return {"db": db, "before": before, "manifest": manifest}


@pytest.fixture(scope="module")
def best(shop: dict) -> pd.DataFrame:
    return pd.DataFrame(tailor_json("offers", "--db", shop["db"]))


def customers_known(db: Path) -> set[str]:
    rows = sql(db, "SELECT customer_id FROM customers UNION SELECT customer_id FROM events")
    return {str(r[0]) for r in rows}


def test_without_an_open_campaign_offers_says_what_to_load(shop: dict):
    result = shop["before"]["offers"]
    assert result.exit_code == 1
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith("error: build ")
    assert "has no open campaign to offer" in message
    assert "ingest a planned campaign" in message and "rebuild" in message
    # The model was still tested on the past campaigns.
    evaluation = shop["before"]["evaluation"]
    assert evaluation.exit_code == 0, evaluation.output
    assert "metrics" in json.loads(evaluation.stdout)


def test_the_build_scores_the_planned_campaign(shop: dict):
    summary = shop["manifest"]["offers"]
    assert summary["open_campaigns"] == 1
    assert summary["scored_customers"] == len(customers_known(shop["db"])) - 1
    past = sql(shop["db"], f"SELECT campaign_id::VARCHAR FROM campaigns "
                           f"WHERE campaign_id <> {PLANNED} ORDER BY start")  # fmt: skip
    assert summary["train_campaigns"] == [row[0] for row in past]
    assert "offers" in shop["manifest"]["steps"]


def test_next_best_offers_one_per_consenting_customer(shop: dict, best: pd.DataFrame):
    assert set(CONTRACT) <= set(best.columns)
    assert best["customer_id"].is_unique
    assert {str(c) for c in best["customer_id"]} == customers_known(shop["db"]) - {str(OPTED_OUT)}
    assert (best["campaign_id"].astype(str) == str(PLANNED)).all()
    assert best["expected_value"].is_monotonic_decreasing
    assert best["probability"].between(0, 1).all()
    assert set(best["offer_id"].dropna().astype(int)) <= {991, 992}
    assert best["reason"].str.contains("likely to redeem").all()


def test_the_terminal_table_says_how_many_rows(shop: dict, best: pd.DataFrame):
    result = tailor("offers", "--db", shop["db"], "--limit", 3)
    assert result.exit_code == 0, result.output
    assert f"next best offers: {len(best):,} rows, highest expected value first" in result.stdout
    assert "reasons: --output FILE.csv or --json" in result.stdout
    first = str(best["customer_id"].iloc[0])
    assert first in result.stdout


def test_a_campaign_target_list_within_a_budget(shop: dict, best: pd.DataFrame, tmp_path: Path):
    path = tmp_path / "f.csv"
    result = tailor("offers", "--db", shop["db"], "--campaign", PLANNED, "--budget", 5,
                    "--output", path)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "5 rows written" in result.stdout
    written = pd.read_csv(path)
    assert [c for c in written.columns if c in CONTRACT] == CONTRACT
    assert len(written) == 5
    assert written["probability"].is_monotonic_decreasing
    # The five highest probabilities of the campaign's scores (all here: one open campaign).
    top = best.sort_values("probability", ascending=False).head(5)
    assert written["customer_id"].tolist() == top["customer_id"].tolist()
    assert written["probability"].tolist() == pytest.approx(top["probability"].tolist())
    assert OPTED_OUT not in written["customer_id"].tolist()


def test_a_cost_budget_and_a_contact_cost(shop: dict, best: pd.DataFrame):
    by_cost = tailor_json("offers", "--db", shop["db"], "--campaign", PLANNED, "--max-cost", 10,
                          "--contact-cost", 2.5)  # fmt: skip
    assert len(by_cost) == 4
    worth = float(best["expected_value"].median())
    above = tailor_json("offers", "--db", shop["db"], "--campaign", PLANNED, "--contact-cost",
                        worth)  # fmt: skip
    assert len(above) == int((best["expected_value"] > worth).sum())
    result = tailor("offers", "--db", shop["db"], "--max-cost", 10, "--contact-cost", 1)
    assert result.exit_code == 1 and "need --campaign" in result.stderr


def test_an_unknown_campaign_names_the_open_one(shop: dict):
    result = tailor("offers", "--db", shop["db"], "--campaign", 1)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: offers: campaign 1 is not open at the build's end (open: {PLANNED})"
    )


def test_the_evaluation_against_the_baselines(shop: dict):
    data = tailor_json("offers", "--db", shop["db"], "--evaluation")
    metrics = {m["model"]: m for m in data["metrics"]}
    assert set(metrics) == {"model", "everyone in the campaign", "past redemption count"}
    assert metrics["everyone in the campaign"]["auc"] == 0.5
    assert metrics["everyone in the campaign"]["top_decile_lift"] == 1.0
    assert all(0 <= m["auc"] <= 1 and 0 <= m["top_decile_lift"] <= 10 for m in metrics.values())
    past = sql(shop["db"], f"SELECT campaign_id FROM campaigns WHERE campaign_id <> {PLANNED}")
    campaigns = {str(row[0]) for row in past}
    assert set(data["test_campaigns"]) | set(data["train_campaigns"]) <= campaigns
    assert not set(data["test_campaigns"]) & set(data["train_campaigns"])
    (members,) = sql(
        shop["db"],
        "SELECT count(*) FROM campaign_members WHERE campaign_id::VARCHAR IN "
        f"({', '.join(repr(c) for c in data['test_campaigns'])})",
    )[0]
    assert data["n_test"] == members and 0 < data["redemption_rate"] < 1


def test_service_view_of_a_customer(shop: dict, best: pd.DataFrame):
    customer = str(best["customer_id"].iloc[0])
    view = tailor_json("service", customer, "--db", shop["db"])
    assert str(view["customer_id"]) == customer
    assert view["talking_points"] and all(isinstance(p, str) for p in view["talking_points"])
    offer = view["next_best_offer"]
    assert str(offer["campaign_id"]) == str(PLANNED)
    assert offer["probability"] == pytest.approx(float(best["probability"].iloc[0]))
    assert any(p.startswith(f"Offer campaign {PLANNED}") for p in view["talking_points"])
    assert 1 <= len(view["products"]) <= 5
    assert view["segment"] in {p.split(":")[0] for p in view["talking_points"]}


def test_service_lists_recent_returns(shop: dict):
    db = shop["db"]
    rows = sql(db, "SELECT customer_id, count(*), sum(value) FROM events "
                   "WHERE event_type = 'return' "
                   "AND timestamp >= (SELECT max(timestamp) FROM events) - INTERVAL 90 DAY "
                   "GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 1")  # fmt: skip
    customer, count, total = rows[0]
    view = tailor_json("service", customer, "--db", db)
    assert len(view["returns"]) == count
    assert sum(r["value"] for r in view["returns"]) == pytest.approx(total)
    assert any(
        p.startswith(f"{count} return(s) in the last 90 days") for p in view["talking_points"]
    )


def test_service_for_a_customer_who_opted_out_offers_nothing(shop: dict):
    view = tailor_json("service", OPTED_OUT, "--db", shop["db"])
    assert view["next_best_offer"] is None
    assert not any(p.startswith("Offer") for p in view["talking_points"])


def test_service_for_an_unknown_customer_is_one_line(shop: dict):
    result = tailor("service", "no-such-customer", "--db", shop["db"])
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith("error: unknown customer 'no-such-customer' in build ")


def test_a_shop_without_campaigns_builds_without_offers(tmp_path: Path):
    """Ratings have no campaigns: the build says why it has no offer scores, and so does
    `tailor offers`, in one line."""
    db = tmp_path / "ratings.duckdb"
    tailor_json("generate", tmp_path / "files", "--ratings", "--db", db, "--customers", 80,
                "--items", 40)  # fmt: skip
    manifest = tailor_json("build", "--db", db)
    reason = manifest["offers"]["skipped"]
    assert reason.startswith("offers: no campaign with members")
    for args in ([], ["--evaluation"]):
        result = tailor("offers", "--db", db, *args)
        assert result.exit_code == 1
        assert result.stderr.strip() == f"error: the current build has no offer scores: {reason}"
