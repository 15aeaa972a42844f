"""PUT /v1/customers/{id}/consent: stored in the warehouse, and obeyed by the next request."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tailor.privacy.consent import NOT_PERSONALIZED


def consent(client: TestClient, customer: str, headers: dict, **flags) -> dict:
    response = client.put(f"/v1/customers/{customer}/consent", json=flags, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def stored(client: TestClient, customer: int) -> tuple:
    with client.app.state.serving.reading() as wh:
        return wh.con.execute(
            "SELECT consent_personalization, consent_marketing FROM customers "
            "WHERE customer_id = ?",
            [customer],
        ).fetchone()


def test_opting_out_of_personalization_applies_to_the_next_list(client, as_role):
    url = "/v1/customers/11/recommendations?k=4"
    before = client.get(url, headers=as_role["read"]).json()["items"]
    assert not any(i["reason"].startswith(NOT_PERSONALIZED) for i in before)
    assert consent(client, "11", as_role["write"], personalization=False) == {
        "customer_id": "11", "personalization": False, "marketing": None, "analytics": None,
    }  # fmt: skip
    assert stored(client, 11) == (False, None)
    after = client.get(url, headers=as_role["read"]).json()["items"]
    assert len(after) == 4 and all(i["reason"].startswith(NOT_PERSONALIZED) for i in after)
    service = client.get("/v1/customers/11/service", headers=as_role["read"]).json()
    assert all(p["reason"].startswith(NOT_PERSONALIZED) for p in service["products"])
    consent(client, "11", as_role["write"], personalization=True)
    assert client.get(url, headers=as_role["read"]).json()["items"] == before


def test_opting_out_of_marketing_leaves_every_offer_list_at_once(client, as_role):
    listed = {str(r["customer_id"]) for r in client.get("/v1/offers", headers=as_role["read"])
              .json()["offers"]}  # fmt: skip
    assert "12" in listed
    consent(client, "12", as_role["write"], marketing=False)
    assert stored(client, 12) == (None, False)
    rows = client.get("/v1/offers?campaign=99", headers=as_role["read"]).json()["offers"]
    assert "12" not in {str(r["customer_id"]) for r in rows}
    mine = client.get("/v1/customers/12/offers", headers=as_role["read"]).json()
    assert mine["offers"] == []
    consent(client, "12", as_role["write"], marketing=True)
    mine = client.get("/v1/customers/12/offers", headers=as_role["read"]).json()
    assert len(mine["offers"]) == 1


def test_consent_needs_a_write_key_and_a_flag(client, as_role):
    url = "/v1/customers/13/consent"
    assert client.put(url, json={"marketing": False}).status_code == 401
    assert client.put(url, json={"marketing": False}, headers=as_role["read"]).status_code == 403
    empty = client.put(url, json={}, headers=as_role["write"])
    assert empty.status_code == 422 and "say what changes" in empty.json()["detail"]
    extra = client.put(url, json={"newsletter": False}, headers=as_role["write"])
    assert extra.status_code == 422
    text = client.put("/v1/customers/abc/consent", json={"marketing": False},
                      headers=as_role["write"])  # fmt: skip
    assert text.status_code == 422 and "integers" in text.json()["detail"]
    assert stored(client, 13) == (None, None)
