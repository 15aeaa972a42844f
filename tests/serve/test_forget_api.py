"""DELETE /v1/customers/{id}: erasure through the API, served at once, checked with SQL."""

from __future__ import annotations

import pytest

from tailor.build import builds_dir
from tailor.store.schema import domains

FORGOTTEN = 1  # opted out of marketing too (see conftest): in opt-outs and the offer model


def held_rows(client, customer: int) -> dict[str, int]:
    with client.app.state.serving.reading() as wh:
        counts = {
            table: wh.con.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = ?", [customer]
            ).fetchone()[0]
            for table, column in domains()["customer"]
        }
    return {table: n for table, n in counts.items() if n}


def customer_ids(answer) -> set:
    """Every value of a customer_id field anywhere in a JSON answer."""
    found = set()
    if isinstance(answer, dict):
        for key, value in answer.items():
            if key == "customer_id":
                found.add(str(value))
            found |= customer_ids(value)
    elif isinstance(answer, list):
        for value in answer:
            found |= customer_ids(value)
    return found


@pytest.fixture(scope="module")
def forgotten(client, as_role, shop):
    before = {
        "rows": held_rows(client, FORGOTTEN),
        "build_id": client.app.state.serving.served.build_id,
    }
    response = client.delete(f"/v1/customers/{FORGOTTEN}", headers=as_role["admin"])
    assert response.status_code == 200, response.text
    return {"before": before, "answer": response.json()}


def test_only_an_admin_key_forgets(client, as_role):
    for role in ("read", "write"):
        response = client.delete("/v1/customers/2", headers=as_role[role])
        assert response.status_code == 403
    assert client.delete("/v1/customers/2").status_code == 401
    assert held_rows(client, 2)  # still there


def test_the_answer_counts_the_rows_and_names_no_one(client, forgotten):
    answer, before = forgotten["answer"], forgotten["before"]
    assert answer["held"] is True
    assert answer["warehouse_rows"] == before["rows"]
    assert {"events", "customers"} <= set(answer["warehouse_rows"])
    assert "customer_id" not in answer and len(answer["subject"]) == 64
    assert held_rows(client, FORGOTTEN) == {}


def test_the_build_without_them_is_served_at_once(client, shop, forgotten):
    state = client.app.state.serving
    assert (
        state.served.build_id == forgotten["answer"]["build_id"] != forgotten["before"]["build_id"]
    )
    folders = [p.name for p in builds_dir(shop).iterdir() if p.is_dir()]
    assert folders == [state.served.build_id]
    assert str(FORGOTTEN) not in {str(c) for c in state.served.recommender.dataset_.customer_ids}
    assert str(FORGOTTEN) not in state.opted_out["marketing"]


def test_every_answer_treats_them_as_a_stranger(client, as_role, forgotten):
    read, admin = as_role["read"], as_role["admin"]
    assert client.get(f"/v1/customers/{FORGOTTEN}", headers=read).status_code == 404
    response = client.get(f"/v1/customers/{FORGOTTEN}/data", headers=admin)
    assert response.status_code == 404 and "holds nothing" in response.json()["detail"]
    theirs = client.get(f"/v1/customers/{FORGOTTEN}/recommendations?k=5", headers=read).json()
    stranger = client.get("/v1/customers/nobody-at-all/recommendations?k=5", headers=read).json()
    assert [i["item_id"] for i in theirs["items"]] == [i["item_id"] for i in stranger["items"]]
    for path in ("/v1/offers?limit=1000", "/v1/segments", f"/v1/customers/{FORGOTTEN}/offers"):
        answer = client.get(path, headers=read)
        assert str(FORGOTTEN) not in customer_ids(answer.json()), path


def test_events_are_stored_after_the_file_was_replaced(client, as_role, forgotten):
    event = {"customer_id": 3, "item_id": 1, "event_type": "purchase"}
    response = client.post("/v1/events", json=event, headers=as_role["write"])
    assert response.status_code in (200, 201, 202), response.text
    with client.app.state.serving.reading() as wh:
        stored = wh.con.execute(
            "SELECT count(*) FROM events WHERE customer_id = 3 AND item_id = 1 "
            "AND ingest_id = (SELECT max(ingest_id) FROM ingest_log)"
        ).fetchone()[0]
    assert stored == 1


def test_forgetting_again_holds_nothing(client, as_role, forgotten):
    answer = client.delete(f"/v1/customers/{FORGOTTEN}", headers=as_role["admin"]).json()
    assert answer["held"] is False and answer["warehouse_rows"] == {}
    assert answer["subject"] == forgotten["answer"]["subject"]
