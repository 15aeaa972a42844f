"""Offers, target lists and the service view over HTTP (TestClient), checked against the build's
offer scores read by the library."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tailor.build import builds_dir, current_build
from tailor.customers.intelligence import CustomerIntelligence
from tailor.marketing.targeting import OfferScores


@pytest.fixture(scope="module")
def scores(shop: Path, client: TestClient) -> pd.DataFrame:
    info = current_build(builds_dir(shop))
    scores = OfferScores.load(info.path / "offers").scores
    return scores.assign(customer_id=scores["customer_id"].astype(str))


def test_next_best_offers_match_the_build(client, as_role, scores):
    answer = client.get("/v1/offers", headers=as_role["read"]).json()
    assert answer["campaign"] is None
    rows = answer["offers"]
    assert len(rows) == scores["customer_id"].nunique()  # one open campaign: one row each
    values = [r["expected_value"] for r in rows]
    assert values == sorted(values, reverse=True)
    best = scores.sort_values("expected_value", ascending=False).iloc[0]
    assert str(rows[0]["customer_id"]) == best["customer_id"]
    assert rows[0]["probability"] == pytest.approx(best["probability"])
    assert rows[0]["expected_value"] == pytest.approx(best["probability"] * best["value"])
    assert all(r["reason"].startswith(f"{r['probability']:.0%} likely to redeem: ") for r in rows)


def test_a_campaign_target_list_within_a_budget(client, as_role, scores):
    answer = client.get("/v1/offers?campaign=99&budget=7", headers=as_role["read"]).json()
    rows = answer["offers"]
    assert len(rows) == 7
    top = scores.sort_values(["probability", "customer_id"], ascending=[False, True]).head(7)
    assert [str(r["customer_id"]) for r in rows] == top["customer_id"].tolist()
    assert {str(r["campaign_id"]) for r in rows} == {"99"}


def test_an_unknown_campaign_is_404_naming_the_open_ones(client, as_role):
    response = client.get("/v1/offers?campaign=12345", headers=as_role["read"])
    assert response.status_code == 404
    assert "open: 99" in response.json()["detail"]


def test_a_customer_who_opted_out_of_marketing_gets_no_offer(client, as_role, scores, opted_out):
    assert {str(c) for c in opted_out}.isdisjoint(set(scores["customer_id"]))
    assert len(set(scores["customer_id"])) == 60 - len(opted_out)
    someone = opted_out[0]
    answer = client.get(f"/v1/customers/{someone}/offers", headers=as_role["read"]).json()
    assert answer["offers"] == []
    view = client.get(f"/v1/customers/{someone}/service", headers=as_role["read"]).json()
    assert view["next_best_offer"] is None


def test_the_service_view_has_talking_points_for_a_known_customer(client, as_role, scores, shop):
    customer = scores["customer_id"].iloc[0]
    view = client.get(f"/v1/customers/{customer}/service?k=3", headers=as_role["read"]).json()
    info = current_build(builds_dir(shop))
    found = CustomerIntelligence.load(info.path / "customers").customers
    row = found.loc[found["customer_id"].astype(str) == customer].iloc[0]
    assert view["segment"] == row["rfm_segment"]
    assert view["next_best_offer"]["campaign_id"] == 99
    mine = scores.loc[scores["customer_id"] == customer].iloc[0]
    assert view["next_best_offer"]["probability"] == pytest.approx(mine["probability"])
    assert len(view["products"]) <= 3
    assert all(p["reason"] for p in view["products"])
    assert any(point.startswith("Offer campaign 99") for point in view["talking_points"])
    assert any(point.startswith(row["rfm_segment"]) for point in view["talking_points"])


def test_unknown_customer_service_is_404_and_reads_need_a_key(client, as_role):
    assert client.get("/v1/customers/nobody/service", headers=as_role["read"]).status_code == 404
    assert client.get("/v1/offers").status_code == 401
