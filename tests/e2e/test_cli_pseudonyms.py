"""Pseudonymous ids end to end: `tailor ingest --pseudonymize`, `build`, and every look-up of a
raw id (`recommend --customer`, `service`, `consent`, `pseudonym`, the HTTP API's paths and
events) on a generated shop whose customer ids are marked text; the raw ids in no file of the
warehouse or its builds, and the same lists as the same data without pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tailor.cli import app
from tailor.serve import ServeSettings, create_app
from tailor.serve.auth import create_key
from tailor.store import Warehouse

KEY = "a pseudonym key for the e2e tests"
FAST = "popularity,recency_frequency"
MARK = b"-RAW"  # every raw customer id ends so; nothing else in the shop does


def raw_id(n: object) -> str:
    return f"CUST-{int(n):04d}-RAW"


def by_hand(customer_id: str) -> str:
    return hmac.new(KEY.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def tailor(*args: str | Path | int, key: str | None = KEY, **env: str):
    env = {"TAILOR_PSEUDONYM_KEY": key, **env}  # None: unset for the call
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def tailor_json(*args: str | Path | int, key: str | None = KEY, **env: str):
    result = tailor(*args, "--json", key=key, **env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A generated shop with text customer ids, loaded and built twice: as it is
    (plain.duckdb) and pseudonymized (pseudo.duckdb)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_PSEUDONYM_KEY_FILE"):
            mp.delenv(name, raising=False)
        mp.setenv("TAILOR_RECOMMENDERS", FAST)
        folder = tmp_path_factory.mktemp("shop")
        mp.chdir(folder)
        tailor_json("generate", "files", "--customers", 60, "--items", 80, "--days", 120)
        (folder / "raw").mkdir()
        for path in sorted((folder / "files").glob("*.csv")):
            frame = pd.read_csv(path)
            if "customer_id" in frame:
                frame["customer_id"] = frame["customer_id"].map(raw_id)
            frame.to_csv(folder / "raw" / path.name, index=False)
        for db, key in (("plain.duckdb", None), ("pseudo.duckdb", KEY)):
            for n, path in enumerate(sorted((folder / "raw").glob("*.csv"))):
                # Only the first ingest asks; the warehouse then pseudonymizes every one.
                flag = ["--pseudonymize"] if key and n == 0 else []
                kind = path.stem.replace("_", "-")
                tailor_json("ingest", kind, path, "--db", db, *flag, key=key)
            tailor_json("build", "--db", db, key=key)
        yield folder


def on_disk(folder: Path, db: str) -> list[Path]:
    path = folder / db
    builds = path.with_name(path.stem + ".builds")
    return [path, *(p for p in builds.rglob("*") if p.is_file())]


def a_customer(shop: Path) -> str:
    return pd.read_csv(shop / "raw" / "events.csv")["customer_id"].iloc[0]


def test_no_raw_id_in_any_file_of_the_warehouse_or_its_builds(shop: Path):
    assert MARK in (shop / "plain.duckdb").read_bytes()  # the control: it would show
    files = on_disk(shop, "pseudo.duckdb")
    assert len(files) > 10
    for path in files:
        assert MARK not in path.read_bytes(), path
    assert KEY.encode() not in (shop / "pseudo.duckdb").read_bytes()


def test_recommend_by_raw_id_equals_the_plain_warehouse_modulo_ids(shop: Path):
    customer = a_customer(shop)
    pseudo = tailor_json("recommend", "--db", "pseudo.duckdb", "--customer", customer, "--k", 5)
    plain = tailor_json("recommend", "--db", "plain.duckdb", "--customer", customer, "--k", 5)
    assert len(plain) == 5
    assert {row["customer_id"] for row in pseudo} == {by_hand(customer)}
    assert {row["customer_id"] for row in plain} == {customer}
    strip = [{k: v for k, v in row.items() if k != "customer_id"} for row in pseudo]
    assert strip == [{k: v for k, v in row.items() if k != "customer_id"} for row in plain]


def test_tailor_pseudonym_and_customers_name_the_same_pseudonyms(shop: Path):
    customer = a_customer(shop)
    found = tailor_json("pseudonym", " " + customer, "--db", "pseudo.duckdb")
    assert found == [{"customer_id": customer, "pseudonym": by_hand(customer)}]
    table = tailor_json("customers", "--db", "pseudo.duckdb")
    plain_ids = {row["customer_id"] for row in tailor_json("customers", "--db", "plain.duckdb")}
    assert {row["customer_id"] for row in table} == {by_hand(c) for c in plain_ids}
    refused = tailor("pseudonym", customer, "--db", "plain.duckdb")
    assert refused.exit_code == 1 and "stores customer ids as they are" in refused.stderr


def test_service_and_consent_look_up_raw_ids(shop: Path, tmp_path: Path):
    shutil.copyfile(shop / "pseudo.duckdb", tmp_path / "copy.duckdb")
    shutil.copytree(shop / "pseudo.builds", tmp_path / "copy.builds")
    db, customer = tmp_path / "copy.duckdb", a_customer(shop)
    view = tailor_json("service", customer, "--db", db)
    assert view["customer_id"] == by_hand(customer)
    tailor_json("consent", "set", customer, "--personalization", "no", "--db", db)
    shown = tailor_json("consent", "show", customer, "--db", db)
    assert shown == {"customer_id": by_hand(customer), "personalization": False,
                     "marketing": None, "analytics": None}  # fmt: skip
    lists = tailor_json("recommend", "--db", db, "--customer", customer, "--k", 3)
    assert all(row["reason"].startswith("not personalized") for row in lists)
    with Warehouse(db, read_only=True) as wh:  # one customer row, under the pseudonym
        rows = wh.con.execute("SELECT customer_id FROM customers WHERE consent_personalization")
        assert rows.fetchall() == []
        found = "SELECT count(*) FROM customers WHERE customer_id = ?"
        assert wh.con.execute(found, [by_hand(customer)]).fetchone() == (1,)
    assert MARK not in db.read_bytes()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "customer ids are pseudonymized; set TAILOR_PSEUDONYM_KEY"),
        ("a different key of some length", "is not the one its customer ids were made with"),
    ],
)
def test_without_the_key_or_with_another_every_look_up_and_ingest_is_refused(
    shop: Path, key: str | None, message: str
):
    customer = a_customer(shop)
    for args in (
        ("recommend", "--customer", customer),
        ("service", customer),
        ("consent", "show", customer),
        ("ingest", "events", shop / "raw" / "events.csv"),
    ):
        result = tailor(*args, "--db", "pseudo.duckdb", key=key)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_http_api_looks_up_raw_ids_and_stores_pseudonyms(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    shutil.copyfile(shop / "pseudo.duckdb", tmp_path / "shop.duckdb")
    shutil.copytree(shop / "pseudo.builds", tmp_path / "shop.builds")
    db, customer = tmp_path / "shop.duckdb", a_customer(shop)
    monkeypatch.setenv("TAILOR_PSEUDONYM_KEY", KEY)
    with Warehouse(db) as wh:
        admin = create_key(wh, "admin")
    expected = tailor_json("recommend", "--db", db, "--customer", customer, "--k", 5)
    with TestClient(create_app(ServeSettings.resolve(db))) as client:
        headers = {"X-API-Key": admin}
        got = client.get(f"/v1/customers/{customer}/recommendations?k=5", headers=headers)
        assert got.status_code == 200, got.text
        assert got.json()["customer_id"] == by_hand(customer)
        assert [i["item_id"] for i in got.json()["items"]] == [r["item_id"] for r in expected]
        assert client.get(f"/v1/customers/{customer}", headers=headers).status_code == 200
        report = client.get(f"/v1/customers/{customer}/data", headers=headers)
        assert report.status_code == 200 and report.json()["customer_id"] == by_hand(customer)
        put = client.put(
            f"/v1/customers/{customer}/consent", json={"marketing": False}, headers=headers
        )
        assert put.status_code == 200 and put.json()["customer_id"] == by_hand(customer)
        event = {"customer_id": "NEWCOMER-RAW", "item_id": "1", "timestamp": "2030-01-01"}
        assert client.post("/v1/events", json=event, headers=headers).status_code == 201
        lists = client.get("/v1/customers/NEWCOMER-RAW/recommendations", headers=headers)
        assert lists.json()["customer_id"] == by_hand("NEWCOMER-RAW")
    with Warehouse(db, read_only=True) as wh:
        stored = "SELECT count(*) FROM events WHERE customer_id = ?"
        assert wh.con.execute(stored, [by_hand("NEWCOMER-RAW")]).fetchone() == (1,)
    assert MARK not in db.read_bytes()
    monkeypatch.delenv("TAILOR_PSEUDONYM_KEY")
    with TestClient(create_app(ServeSettings.resolve(db))) as client:
        refused = client.get(f"/v1/customers/{customer}", headers={"X-API-Key": admin})
        assert refused.status_code == 422
        assert "set TAILOR_PSEUDONYM_KEY" in refused.json()["detail"]


def test_encrypted_and_pseudonymized_together(shop: Path, tmp_path: Path):
    encryption = {"TAILOR_ENCRYPTION_KEY": "an encryption key for the e2e tests"}
    db = tmp_path / "both.duckdb"
    for n, path in enumerate(sorted((shop / "raw").glob("*.csv"))):
        flag = ["--pseudonymize"] if n == 0 else []
        tailor_json("ingest", path.stem.replace("_", "-"), path, "--db", db, *flag, **encryption)
    tailor_json("build", "--db", db, **encryption)
    customer = a_customer(shop)
    both = tailor_json("recommend", "--db", db, "--customer", customer, "--k", 5, **encryption)
    plain = tailor_json("recommend", "--db", "plain.duckdb", "--customer", customer, "--k", 5)
    assert [r["item_id"] for r in both] == [r["item_id"] for r in plain]
    assert {r["customer_id"] for r in both} == {by_hand(customer)}
    title = max(pd.read_csv(shop / "raw" / "items.csv")["title"].astype(str), key=len).encode()
    for path in on_disk(tmp_path, "both.duckdb"):
        content = path.read_bytes()
        assert MARK not in content and title not in content, path
    no_key = tailor("recommend", "--db", db, "--customer", customer)
    assert no_key.exit_code == 1 and "encrypted" in no_key.stderr
