"""Pseudonymous customer ids: HMAC-SHA256 in Python and in the ingest's SQL, checked against
Python's hmac module by hand; every table of customer ids; both ingest paths; the warehouse's
mark and its refusals; look-ups; and the same data, model for model, as without pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.build import BuildInfo
from tailor.dataset import Dataset
from tailor.errors import PseudonymError
from tailor.privacy import pseudonym as pseudonyms
from tailor.privacy.keys import Secret
from tailor.privacy.pseudonym import (
    FINGERPRINT_META,
    CustomerIds,
    create_macro,
    fingerprint,
    lookup_id,
    pseudonym,
)
from tailor.store import Warehouse, ingest_files
from tailor.synthetic import generate, write

KEY = Secret(b"a pseudonym key for the tests", "the test")
OTHER = Secret(b"another pseudonym key, as long", "the other test")
RAW = ("CUST-ALPHA-001", "CUST-BETA-002", "CUST-GAMMA-003")


def by_hand(key: bytes, customer_id: str) -> str:
    return hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TAILOR_PSEUDONYM_KEY", "TAILOR_PSEUDONYM_KEY_FILE", "TAILOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A tiny shop whose customer ids are RAW, in every kind of file that holds them."""
    a, b, c = RAW
    texts = {
        "items": "item_id,title\n10,ten\n11,eleven\n12,twelve\n",
        "events": "customer_id,item_id,timestamp,quantity\n"
        f"{a},10,2024-01-01 10:00:00,1\n{a},11,2024-01-01 10:00:00,2\n"
        f" {b} ,10,2024-01-02 09:00:00,1\n{c},12,2024-01-03 08:00:00,-1\n",
        "customers": f"customer_id,consent_marketing,segment_hint\n{a},true,x\n{b},false,y\n",
        "campaigns": "campaign_id,type,start,end\n7,A,2024-01-01,2024-01-31\n",
        "campaign-members": f"campaign_id,customer_id\n7,{a}\n7,{c}\n",
        "offers": "offer_id,campaign_id,item_id\n70,7,10\n",
        "redemptions": f"customer_id,offer_id,campaign_id,timestamp\n{a},70,7,2024-01-05\n",
    }
    paths = {}
    for kind, text in texts.items():
        paths[kind] = tmp_path / f"{kind}.csv"
        paths[kind].write_text(text)
    return paths


def ingest_shop(db: Path, files: dict[str, Path], **options) -> Warehouse:
    wh = Warehouse(db)
    for kind, path in files.items():
        ingest_files(wh, kind, [path], **options)
    return wh


# -- the pseudonym itself -------------------------------------------------------------------------


def test_pseudonyms_are_hmac_sha256_of_the_id_as_text():
    assert pseudonym(KEY, "C17") == by_hand(KEY.value, "C17")
    assert pseudonym(KEY, 17) == pseudonym(KEY, "17") == pseudonym(KEY, " 17 ")
    assert pseudonym(KEY, "Zoë") == by_hand(KEY.value, "Zoë")
    assert pseudonym(KEY, "C17") != pseudonym(OTHER, "C17")
    assert len(pseudonym(KEY, "C17")) == 64
    # The fingerprint tells keys apart without being a pseudonym of anything a user could send.
    assert fingerprint(KEY) != fingerprint(OTHER)
    assert fingerprint(KEY) == by_hand(KEY.value, "tailor pseudonym key fingerprint")[:32]


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=100),  # longer than SHA-256's block is hashed first
    ids=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=10),
)
def test_the_sql_macro_equals_pythons_hmac(key: bytes, ids: list[str]):
    secret = Secret(key, "hypothesis")
    with duckdb.connect() as con:
        create_macro(con, secret)
        got = con.execute(
            f"SELECT {pseudonyms.MACRO}(id) FROM unnest(?) WITH ORDINALITY t(id, n) ORDER BY n",
            [ids],
        ).fetchall()
        assert [row[0] for row in got] == [by_hand(key, i) for i in ids]
        assert con.execute(f"SELECT {pseudonyms.MACRO}(NULL)").fetchone() == (None,)
        assert con.execute(f"SELECT {pseudonyms.MACRO}(17)").fetchone() == (by_hand(key, "17"),)


# -- ingest ---------------------------------------------------------------------------------------


def test_every_table_of_customer_ids_holds_pseudonyms_and_no_raw_id(
    tmp_path: Path, files: dict[str, Path]
):
    db = tmp_path / "shop.duckdb"
    with ingest_shop(db, files, pseudonymize=True, pseudonym_key=KEY) as wh:
        a, b, c = (by_hand(KEY.value, raw) for raw in RAW)
        events = wh.con.execute(
            "SELECT customer_id, basket_id FROM events ORDER BY timestamp, item_id"
        ).fetchall()
        assert [e[0] for e in events] == [a, a, b, c]  # " CUST-BETA-002 " trimmed first
        assert events[0][1] == events[1][1] and events[0][1].startswith(a + "@")
        rows = wh.con.execute("SELECT customer_id, consent_marketing FROM customers ORDER BY 2")
        assert rows.fetchall() == [(b, False), (a, True)]
        members = wh.con.execute("SELECT customer_id FROM campaign_members ORDER BY 1")
        assert [m[0] for m in members.fetchall()] == sorted([a, c])
        assert wh.con.execute("SELECT customer_id FROM redemptions").fetchall() == [(a,)]
        assert wh.id_type("customer") == "VARCHAR"
        assert wh.get_meta(FINGERPRINT_META) == fingerprint(KEY)
        # The same file again adds nothing: row keys are made of the pseudonyms.
        again = ingest_files(wh, "events", [files["events"]], pseudonym_key=KEY)
        assert again[0].rows_inserted == 0
        # The macro holding the key's pads is gone with the ingest.
        macros = "SELECT count(*) FROM duckdb_functions() WHERE function_name = ?"
        assert wh.con.execute(macros, [pseudonyms.MACRO]).fetchone() == (0,)
    content = db.read_bytes()
    assert not any(raw.encode() in content for raw in RAW)
    assert KEY.value not in content


def test_the_careful_path_makes_the_same_pseudonyms(tmp_path: Path, files: dict[str, Path]):
    fast = ingest_shop(tmp_path / "fast.duckdb", files, pseudonymize=True, pseudonym_key=KEY)
    bad = files["events"].read_text() + f"{RAW[0]},13,not a date,1\n"
    files["events"].write_text(bad)
    careful = ingest_shop(
        tmp_path / "careful.duckdb", files, pseudonymize=True, pseudonym_key=KEY,
        skip_invalid=True,
    )  # fmt: skip
    query = "SELECT customer_id, item_id, basket_id FROM events ORDER BY ALL"
    with fast, careful:
        assert careful.con.execute(query).fetchall() == fast.con.execute(query).fetchall()
    rejects = (files["events"].parent / "events.csv.rejects.csv").read_text()
    assert "not a date" in rejects  # the user's own file, beside it, as without pseudonyms


def test_integer_ids_become_text_pseudonyms(tmp_path: Path):
    path = tmp_path / "e.parquet"
    pd.DataFrame(
        {"customer_id": [17, 17, 4], "item_id": [1, 2, 1], "timestamp": ["2024-01-01"] * 3}
    ).to_parquet(path)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        ingest_files(wh, "events", [path], pseudonymize=True, pseudonym_key=KEY)
        ids = {r[0] for r in wh.con.execute("SELECT customer_id FROM events").fetchall()}
        assert ids == {by_hand(KEY.value, "17"), by_hand(KEY.value, "4")}
        assert wh.id_type("item") == "BIGINT"  # other ids as ever


def test_later_ingests_are_pseudonymized_and_refused_without_the_key(
    tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        ingest_files(wh, "customers", [files["customers"]], pseudonymize=True, pseudonym_key=KEY)
        with pytest.raises(PseudonymError, match="customer ids are pseudonymized; set TAILOR_PS"):
            ingest_files(wh, "events", [files["events"]])
        with pytest.raises(PseudonymError, match="not the one its customer ids were made with"):
            ingest_files(wh, "events", [files["events"]], pseudonym_key=OTHER)
        # Without the option, with the key configured: pseudonymized all the same.
        monkeypatch.setenv("TAILOR_PSEUDONYM_KEY", KEY.value.decode())
        ingest_files(wh, "events", [files["events"]])
        ids = {r[0] for r in wh.con.execute("SELECT DISTINCT customer_id FROM events").fetchall()}
        assert ids == {by_hand(KEY.value, raw) for raw in RAW}
        assert wh.stats()["events"] == 4  # the refused ingests left nothing


def test_a_warehouse_with_raw_ids_is_not_pseudonymized_later(
    tmp_path: Path, files: dict[str, Path]
):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        ingest_files(wh, "items", [files["items"]])
        ingest_files(wh, "events", [files["events"]])
        with pytest.raises(PseudonymError, match="holds raw customer ids already"):
            ingest_files(wh, "customers", [files["customers"]], pseudonymize=True,
                         pseudonym_key=KEY)  # fmt: skip
        with pytest.raises(PseudonymError, match="--pseudonymize needs a pseudonym key"):
            ingest_files(wh, "customers", [files["customers"]], pseudonymize=True)
        assert wh.get_meta(FINGERPRINT_META) is None
    # Items alone hold no customer id: a warehouse of items may still begin pseudonymizing.
    with Warehouse(tmp_path / "items.duckdb") as wh:
        ingest_files(wh, "items", [files["items"]])
        ingest_files(wh, "events", [files["events"]], pseudonymize=True, pseudonym_key=KEY)
        assert wh.get_meta(FINGERPRINT_META) == fingerprint(KEY)


# -- look-ups -------------------------------------------------------------------------------------


def test_lookup_id_hashes_only_where_customers_have_pseudonyms(
    tmp_path: Path, files: dict[str, Path]
):
    with ingest_shop(tmp_path / "plain.duckdb", files) as wh:
        assert lookup_id(wh, RAW[0]) == RAW[0]
        assert not CustomerIds.of(wh).pseudonymized
    with ingest_shop(tmp_path / "p.duckdb", files, pseudonymize=True, pseudonym_key=KEY) as wh:
        assert lookup_id(wh, RAW[0], KEY) == by_hand(KEY.value, RAW[0])
        with pytest.raises(PseudonymError, match="set TAILOR_PSEUDONYM_KEY"):
            lookup_id(wh, RAW[0])
        with pytest.raises(PseudonymError, match="not the one"):
            lookup_id(wh, RAW[0], OTHER)
    manifest = {FINGERPRINT_META: fingerprint(KEY)}
    info = BuildInfo("20240101T000000000000Z", tmp_path, manifest)
    assert CustomerIds.of(info, KEY).lookup_all([" 17", 17]) == [by_hand(KEY.value, "17")] * 2
    assert lookup_id(BuildInfo("b", tmp_path, {}), "C1") == "C1"


def test_the_dataset_is_the_same_modulo_ids(tmp_path: Path):
    """A generated shop loaded with and without pseudonyms: the same interactions, customer for
    customer, once each id is mapped to its pseudonym."""
    folder = tmp_path / "files"
    paths = write(generate(n_customers=40, n_items=50, days=60, seed=3), folder, fmt="parquet")
    datasets = {}
    for name, options in (("plain", {}), ("pseudo", {"pseudonymize": True, "pseudonym_key": KEY})):
        with Warehouse(tmp_path / f"{name}.duckdb") as wh:
            for table, path in paths.items():
                ingest_files(wh, table.replace("_", "-"), [path], **options)
            datasets[name] = Dataset.from_warehouse(wh)
    plain, pseudo = datasets["plain"], datasets["pseudo"]
    rows = pseudo.customer_index([by_hand(KEY.value, str(c)) for c in plain.customer_ids])
    assert (rows >= 0).all() and len(set(rows)) == plain.n_customers == pseudo.n_customers
    np.testing.assert_array_equal(pseudo.item_ids, plain.item_ids)
    difference = pseudo.interactions[rows] - plain.interactions
    assert abs(difference).max() < 1e-9
