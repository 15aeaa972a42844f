"""GET /v1/customers/{id}/data: a data subject access report, checked against the warehouse."""

from __future__ import annotations


def count(client, table: str, customer: int) -> int:
    with client.app.state.serving.reading() as wh:
        return wh.con.execute(
            f"SELECT count(*) FROM {table} WHERE customer_id = ?", [customer]
        ).fetchone()[0]


def test_the_report_holds_every_row_and_the_reasons(client, as_role):
    report = client.get("/v1/customers/21/data", headers=as_role["admin"]).json()
    assert report["customer_id"] == "21"
    held = report["warehouse"]
    assert set(held) == {"customers", "events", "campaign_members", "redemptions"}
    for table, part in held.items():
        assert len(part["rows"]) == count(client, table, 21), table
        assert part["purpose"]
    assert len(held["events"]["rows"]) > 0
    stamps = [r["timestamp"] for r in held["events"]["rows"]]
    assert stamps == sorted(stamps)
    assert not any("row_key" in r or "ingest_id" in r for r in held["events"]["rows"])
    assert held["customers"]["rows"][0]["customer_id"] == 21
    assert report["derived"]["customer_360"]["customer_id"] == 21
    assert {o["campaign_id"] for o in report["derived"]["offers"]} == {99}
    listed = client.get("/v1/customers/21/recommendations?k=10", headers=as_role["read"]).json()
    assert report["recommendations"] == listed["items"]
    assert all(r["reason"] for r in report["recommendations"])


def test_the_report_needs_an_admin_key_and_a_known_customer(client, as_role):
    assert client.get("/v1/customers/21/data", headers=as_role["write"]).status_code == 403
    assert client.get("/v1/customers/21/data").status_code == 401
    for unknown in ("999999", "nobody"):
        response = client.get(f"/v1/customers/{unknown}/data", headers=as_role["admin"])
        assert response.status_code == 404 and "holds nothing" in response.json()["detail"]
