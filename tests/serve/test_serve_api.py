"""The HTTP API in-process (TestClient) over a generated shop: answers checked against the
library on the same build, and against the warehouse."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tailor.build import builds_dir, current_build, load_recommender, load_rules
from tailor.customers.intelligence import CustomerIntelligence
from tailor.recommend.rules import bundles
from tailor.serve import state as state_module


@pytest.fixture(scope="module")
def library(shop: Path, client: TestClient):
    """The build's recommender, rules and intelligence, loaded by the library itself."""
    info = current_build(builds_dir(shop))
    return (
        info,
        load_recommender(info),
        load_rules(info),
        CustomerIntelligence.load(info.path / "customers"),
    )


def served_state(client: TestClient):
    return client.app.state.serving


def sql(client: TestClient, query: str, *params) -> list[tuple]:
    with served_state(client).reading() as wh:
        return wh.con.execute(query, list(params)).fetchall()


def wait(client: TestClient, job: str, admin: dict) -> dict:
    for _ in range(600):
        found = client.get(f"/v1/admin/rebuild/{job}", headers=admin).json()
        if found["status"] != "running":
            return found
        time.sleep(0.05)
    raise AssertionError("rebuild did not finish")


# -- keys and roles ------------------------------------------------------------------------------


def test_health_needs_no_key_and_names_the_build(client, library):
    info = library[0]
    body = client.get("/v1/health").json()
    assert body["status"] == "ok"
    assert body["build_id"] == info.build_id
    assert body["counts"]["customers"] == info.manifest["dataset"]["customers"] == 60
    assert body["recommender"] == info.manifest["recommenders"]["default"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/v1/customers/1/recommendations", None),
        ("get", "/v1/segments", None),
        ("post", "/v1/events", {"customer_id": 1, "item_id": 1}),
        ("post", "/v1/admin/rebuild", None),
    ],
)
def test_no_key_or_a_wrong_one_is_401(client, method, path, body):
    for headers in ({}, {"X-API-Key": "tk_nope_nope"}):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert "key" in response.json()["detail"]


def test_roles_read_write_admin(client, as_role):
    event = {"customer_id": 1, "item_id": 100001, "event_type": "view"}
    assert client.post("/v1/events", json=event, headers=as_role["read"]).status_code == 403
    assert client.post("/v1/admin/rebuild", headers=as_role["read"]).status_code == 403
    assert client.post("/v1/admin/rebuild", headers=as_role["write"]).status_code == 403
    assert client.post("/v1/admin/keys", json={"role": "read"},
                       headers=as_role["write"]).status_code == 403  # fmt: skip
    assert client.get("/v1/segments", headers=as_role["read"]).status_code == 200
    assert client.post("/v1/events", json=event, headers=as_role["write"]).status_code == 201


def test_keys_are_stored_hashed_and_new_ones_work_at_once(client, keys, as_role):
    stored = sql(client, "SELECT key_hash, role FROM api_keys")
    assert all(key not in str(stored) for key in keys.values())
    assert len(stored[0][0]) == 64  # a sha256
    created = client.post("/v1/admin/keys", json={"role": "write"}, headers=as_role["admin"])
    assert created.status_code == 201
    fresh = {"X-API-Key": created.json()["key"]}
    assert client.post("/v1/events", json={"customer_id": 2, "item_id": 100002, "event_type":
                       "view"}, headers=fresh).status_code == 201  # fmt: skip
    assert client.post("/v1/admin/rebuild", headers=fresh).status_code == 403


def test_cors_answers_the_configured_origin(client):
    allowed = client.options(
        "/v1/health",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"},
    )
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    other = client.get("/v1/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


# -- recommendations ------------------------------------------------------------------------------


def test_recommendations_are_the_libraries(client, as_role, library):
    recommender = library[1]
    customer = int(recommender.dataset_.customer_ids[5])
    response = client.get(f"/v1/customers/{customer}/recommendations?k=7&diversity=0.3",
                          headers=as_role["read"])  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    expected = recommender.recommend([customer], k=7, diversity=0.3)
    assert body["customer_id"] == customer
    assert [i["item_id"] for i in body["items"]] == expected["item_id"].tolist()
    assert [i["reason"] for i in body["items"]] == expected["reason"].tolist()
    assert [i["score"] for i in body["items"]] == pytest.approx(expected["score"].tolist())


def test_a_repeated_request_is_answered_from_the_builds_cache(client, as_role):
    served = client.app.state.serving.served
    customer = int(served.recommender.dataset_.customer_ids[11])
    url = f"/v1/customers/{customer}/recommendations?k=5"
    first = client.get(url, headers=as_role["read"]).json()
    cached = served.lists.get((str(customer), 5, False, 0.0))
    assert cached == first
    assert client.get(url, headers=as_role["read"]).json() == first
    # A customer with events since the build is never answered from the cache.
    item = first["items"][0]["item_id"]
    event = {"customer_id": customer, "item_id": item, "event_type": "not_interested"}
    client.post("/v1/events", json=event, headers=as_role["write"])
    after = client.get(url, headers=as_role["read"]).json()
    assert item not in [i["item_id"] for i in after["items"]]


def test_a_purchase_posted_is_left_out_of_the_next_list_at_once(client, as_role):
    """The contract: POST a purchase of X by C, and C's next list (exclude_purchased) lacks X."""
    customer = 7
    url = f"/v1/customers/{customer}/recommendations?k=10&exclude_purchased=true"
    before = client.get(url, headers=as_role["read"]).json()["items"]
    bought = before[0]["item_id"]
    posted = client.post("/v1/events", json={"customer_id": customer, "item_id": bought},
                         headers=as_role["write"])  # fmt: skip
    assert posted.status_code == 201 and posted.json() == {"accepted": 1}
    after = [i["item_id"] for i in client.get(url, headers=as_role["read"]).json()["items"]]
    assert bought not in after
    assert after[: len(before) - 1] == [i["item_id"] for i in before[1:]]


def test_not_interested_removes_an_item_even_without_exclude(client, as_role):
    url = "/v1/customers/8/recommendations?k=5"
    first = client.get(url, headers=as_role["read"]).json()["items"][0]["item_id"]
    client.post("/v1/events", json={"customer_id": 8, "item_id": first,
                "event_type": "not_interested"}, headers=as_role["write"])  # fmt: skip
    assert first not in [i["item_id"] for i in client.get(url, headers=as_role["read"]).json()
                         ["items"]]  # fmt: skip


def test_unknown_customer_gets_cold_start_then_a_session_list(client, as_role, library):
    url = "/v1/customers/visitor-42/recommendations?k=5"
    cold = client.get(url, headers=as_role["read"])
    assert cold.status_code == 200
    assert cold.json()["customer_id"] == "visitor-42"
    assert all(i["reason"].startswith("new here") for i in cold.json()["items"])
    item = int(library[1].dataset_.item_ids[3])
    client.post("/v1/events", json=[{"customer_id": "visitor-42", "item_id": item,
                "event_type": "view"}], headers=as_role["write"])  # fmt: skip
    warm = client.get(url, headers=as_role["read"]).json()["items"]
    assert all(i["reason"].startswith("often bought with") for i in warm)
    # Without exclude_purchased the viewed item itself may come back, as in a session list
    # that keeps the session's items.
    expected = library[1].recommend_session([item], k=5, exclude_session=False)
    assert [i["item_id"] for i in warm] == expected["item_id"].tolist()


def test_session_recommendations_are_the_libraries(client, as_role, library):
    items = [int(i) for i in library[1].dataset_.item_ids[[1, 2]]]
    body = {"items": [*items, "not-an-item"], "k": 4}
    response = client.post("/v1/sessions/recommendations", json=body, headers=as_role["read"])
    assert response.status_code == 200
    expected = library[1].recommend_session(items, k=4)
    assert [i["item_id"] for i in response.json()["items"]] == expected["item_id"].tolist()
    empty = client.post("/v1/sessions/recommendations", json={"items": []},
                        headers=as_role["read"]).json()["items"]  # fmt: skip
    assert all(i["reason"].startswith("new here") for i in empty)


def test_similar_and_bundles_are_the_libraries(client, as_role, library):
    _, recommender, rules, _ = library
    item = int(rules["antecedents"].iloc[0][0])
    similar = client.get(f"/v1/items/{item}/similar?k=5", headers=as_role["read"]).json()
    expected = recommender.similar_items([item], k=5)
    assert [i["item_id"] for i in similar["items"]] == expected["similar_item_id"].tolist()
    found = client.get(f"/v1/items/{item}/bundles?k=3", headers=as_role["read"]).json()
    expected = bundles(rules, item, k=3)
    assert found["item_id"] == item
    assert [b["item_id"] for b in found["items"]] == expected["bundle_item_id"].tolist()
    assert [b["lift"] for b in found["items"]] == pytest.approx(expected["lift"].tolist())
    assert len(found["items"]) > 0


@pytest.mark.parametrize("path", ["/v1/items/{}/similar", "/v1/items/{}/bundles"])
def test_unknown_item_is_404_with_a_message(client, as_role, path):
    response = client.get(path.format("no-such-item"), headers=as_role["read"])
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown item 'no-such-item'"


# -- events ---------------------------------------------------------------------------------------


def test_events_are_stored_with_canonical_types_and_once_per_event_id(client, as_role):
    event = {"customer_id": "11", "item_id": 100011, "event_type": "cart", "quantity": 2,
             "timestamp": "2024-05-01T12:00:00+02:00", "event_id": "order-1/line-1"}  # fmt: skip
    for _ in range(3):  # a client's retries
        assert client.post("/v1/events", json=event, headers=as_role["write"]).status_code == 201
    rows = sql(client, "SELECT customer_id, item_id, event_type, timestamp, quantity, basket_id "
               "FROM events WHERE event_id = 'order-1/line-1'")  # fmt: skip
    assert len(rows) == 1
    customer, item, kind, stamp, quantity, basket = rows[0]
    # Item ids stay integers; customer ids were widened to text by "visitor-42" above.
    assert (str(customer), item, kind, quantity) == ("11", 100011, "cart", 2.0)
    assert stamp == pd.Timestamp("2024-05-01 10:00:00")  # UTC
    assert basket == "11@2024-05-01T10:00:00.000000"  # as ingest derives it


def test_a_negative_purchase_is_stored_as_a_return(client, as_role):
    event = {"customer_id": 12, "item_id": 100012, "quantity": -1, "value": -2.5,
             "event_id": "refund-9"}  # fmt: skip
    client.post("/v1/events", json=event, headers=as_role["write"])
    rows = sql(client, "SELECT event_type, quantity, value FROM events WHERE event_id = 'refund-9'")
    assert rows == [("return", 1.0, 2.5)]


@pytest.mark.parametrize(
    "body",
    [
        {"customer_id": 1},
        {"customer_id": 1, "item_id": 2, "event_type": "like"},
        {"customer_id": 1, "item_id": 2, "timestamp": "yesterday"},
        {"customer_id": 1, "item_id": 2, "timestamp": "3000-01-01T00:00:00"},
        {"customer_id": 1, "item_id": 2, "quantity": "two"},
        {"customer_id": 1, "item_id": 2, "colour": "red"},
        {"customer_id": "", "item_id": 2},
        {"customer_id": [1], "item_id": 2},
        [],
        [{"customer_id": 1, "item_id": 2}] * 1001,
        "purchase",
    ],
)
def test_bad_events_are_422_with_field_errors_and_store_nothing(client, as_role, body):
    before = sql(client, "SELECT count(*) FROM events")[0][0]
    response = client.post("/v1/events", json=body, headers=as_role["write"])
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list) and response.json()["detail"][0]["loc"]
    assert sql(client, "SELECT count(*) FROM events")[0][0] == before


@pytest.mark.parametrize(
    "query", ["k=0", "k=abc", "k=100000", "diversity=2", "exclude_purchased=maybe"]
)
def test_bad_query_is_422(client, as_role, query):
    response = client.get(f"/v1/customers/1/recommendations?{query}", headers=as_role["read"])
    assert response.status_code == 422


# -- customers and segments ---------------------------------------------------------------------


def test_customer_360_is_the_builds_row_with_purchases_and_actions(client, as_role, library):
    customers = library[3].customers
    row = customers.iloc[0]
    customer = int(row["customer_id"])
    body = client.get(f"/v1/customers/{customer}", headers=as_role["read"]).json()
    assert body["customer_id"] == customer
    assert body["rfm_segment"] == row["rfm_segment"]
    assert body["cluster"] == row["cluster"]
    assert body["clv"] == pytest.approx(row["clv"])
    assert body["churn_probability"] == pytest.approx(row["churn_probability"])
    assert body["profile"]["frequency"] == row["frequency"]
    assert body["actions"][0]["reason"].startswith(row["rfm_segment"])
    stored = sql(client, "SELECT item_id FROM events WHERE customer_id = ? AND event_type = "
                 "'purchase' ORDER BY timestamp DESC LIMIT 10", customer)  # fmt: skip
    assert [p["item_id"] for p in body["recent_purchases"]] == [r[0] for r in stored]


def test_unknown_customer_360_is_404(client, as_role):
    assert client.get("/v1/customers/nobody", headers=as_role["read"]).status_code == 404


def test_segments_are_the_builds(client, as_role, library):
    body = client.get("/v1/segments", headers=as_role["read"]).json()
    intelligence = library[3]
    assert [s["segment"] for s in body["rfm_segments"]] == intelligence.segments["segment"].tolist()
    assert len(body["clusters"]) == len(intelligence.clusters)


# -- rebuilds and hot swap ------------------------------------------------------------------------


def test_a_failed_rebuild_leaves_the_old_build_serving(client, as_role, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(state_module, "run_build", broken)
    before = client.get("/v1/health").json()["build_id"]
    started = client.post("/v1/admin/rebuild", headers=as_role["admin"])
    assert started.status_code == 202
    job = wait(client, started.json()["job_id"], as_role["admin"])
    assert job["status"] == "failed" and "disk full" in job["error"]
    assert client.get("/v1/health").json()["build_id"] == before
    assert client.get("/v1/customers/1/recommendations",
                      headers=as_role["read"]).json()["build_id"] == before  # fmt: skip


def test_a_rebuild_swaps_the_build_and_keeps_requests_on_theirs(client, as_role):
    state = served_state(client)
    held = state.served  # what a request in flight holds
    client.post("/v1/events", json={"customer_id": 30, "item_id": 100030, "event_id": "swap-1"},
                headers=as_role["write"])  # fmt: skip
    started = client.post("/v1/admin/rebuild", json={}, headers=as_role["admin"])
    assert started.status_code == 202
    job = wait(client, started.json()["job_id"], as_role["admin"])
    assert job["status"] == "succeeded", job
    assert job["build_id"] != held.build_id
    assert client.get("/v1/health").json()["build_id"] == job["build_id"]
    assert held.recommender.recommend([30], k=3)["item_id"].tolist()  # the old object still works
    # The new build read the events posted before it: they are no longer held in memory.
    assert (
        state.served.recommender.dataset_.summary()["events"]
        > held.info.manifest["dataset"]["events"]
    )
    assert len(state.recent) == 0
    assert client.get("/v1/admin/rebuild/nope", headers=as_role["admin"]).status_code == 404
