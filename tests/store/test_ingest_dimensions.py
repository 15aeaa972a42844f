"""Dimensions (items, customers, campaigns) are upserted: the newest value of a key wins."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from tailor.store import ingest_files

ITEMS = "item_id,title,price\n1,Milk,1.5\n2,Bread,2.0\n"


def counts(report):
    return report.rows_read, report.rows_inserted, report.rows_updated, report.rows_unchanged


def test_first_load_inserts(wh, write, rows):
    (report,) = ingest_files(wh, "items", [write("i.csv", ITEMS)])
    assert counts(report) == (2, 2, 0, 0)
    assert rows(wh, "items", "item_id", "title", "price") == [(1, "Milk", 1.5), (2, "Bread", 2.0)]


def test_identical_reingest_changes_nothing(wh, write, snapshot):
    path = write("i.csv", ITEMS)
    ingest_files(wh, "items", [path])
    before = snapshot(wh)
    (report,) = ingest_files(wh, "items", [path])
    assert counts(report) == (2, 0, 0, 2)
    assert snapshot(wh) == before


def test_changed_attribute_is_updated(wh, write, rows):
    ingest_files(wh, "items", [write("a.csv", ITEMS)])
    (report,) = ingest_files(
        wh, "items", [write("b.csv", "item_id,title,price\n2,Rye,2.5\n3,Eggs,3\n")]
    )
    assert counts(report) == (2, 1, 1, 0)
    assert rows(wh, "items", "item_id", "title", "price") == [
        (1, "Milk", 1.5),
        (2, "Rye", 2.5),
        (3, "Eggs", 3.0),
    ]


def test_last_duplicate_key_in_a_file_wins(wh, write, rows):
    path = write("i.csv", "item_id,title\n1,first\n2,other\n1,second\n1,third\n")
    (report,) = ingest_files(wh, "items", [path])
    assert counts(report) == (4, 2, 0, 2)
    assert rows(wh, "items", "item_id", "title") == [(1, "third"), (2, "other")]


def test_last_duplicate_key_wins_when_updating_too(wh, write, rows):
    ingest_files(wh, "items", [write("a.csv", ITEMS)])
    ingest_files(wh, "items", [write("b.csv", "item_id,title\n1,Oat milk\n1,Soy milk\n")])
    assert rows(wh, "items", "item_id", "title") == [(1, "Soy milk"), (2, "Bread")]


def test_unknown_attributes_become_typed_columns(wh, write, rows):
    path = write(
        "i.csv",
        "item_id,title,size,weight_kg,colour,organic\n1,Milk,2,1.03,white,true\n2,Jam,1,0.4,red,false\n",
    )
    ingest_files(wh, "items", [path])
    columns = wh.columns("items")
    assert columns["size"] == "BIGINT"
    assert columns["weight_kg"] == "DOUBLE"
    assert columns["colour"] == "VARCHAR"
    assert columns["organic"] == "BOOLEAN"
    assert rows(wh, "items", "item_id", "size", "weight_kg", "colour", "organic") == [
        (1, 2, 1.03, "white", True),
        (2, 1, 0.4, "red", False),
    ]


def test_a_file_lacking_an_attribute_leaves_it_alone(wh, write, rows):
    ingest_files(wh, "items", [write("a.csv", "item_id,title,colour\n1,Milk,white\n2,Jam,red\n")])
    (report,) = ingest_files(wh, "items", [write("b.csv", "item_id,title\n1,Whole milk\n")])
    assert counts(report) == (1, 0, 1, 0)
    assert rows(wh, "items", "item_id", "title", "colour") == [
        (1, "Whole milk", "white"),
        (2, "Jam", "red"),
    ]


def test_a_new_key_without_an_attribute_gets_null(wh, write, rows):
    ingest_files(wh, "items", [write("a.csv", "item_id,colour\n1,white\n")])
    ingest_files(wh, "items", [write("b.csv", "item_id,title\n2,Jam\n")])
    assert rows(wh, "items", "item_id", "title", "colour") == [(1, None, "white"), (2, "Jam", None)]


def test_a_later_file_adds_an_attribute(wh, write, rows):
    ingest_files(wh, "items", [write("a.csv", ITEMS)])
    (report,) = ingest_files(wh, "items", [write("b.csv", "item_id,shelf\n1,7\n")])
    assert counts(report) == (1, 0, 1, 0)
    assert rows(wh, "items", "item_id", "shelf") == [(1, 7), (2, None)]


def test_an_empty_value_clears_an_attribute(wh, write, rows):
    """The file is the truth for the columns it has: an empty cell means no value."""
    ingest_files(wh, "items", [write("a.csv", ITEMS)])
    ingest_files(wh, "items", [write("b.csv", "item_id,title,price\n1,Milk,\n")])
    assert rows(wh, "items", "item_id", "price") == [(1, None), (2, 2.0)]


# DuckDB types a column from a sample of the first 20,480 rows.
BEYOND_SAMPLE = 25_000


def test_attribute_contradicted_after_duckdbs_sample_is_kept_as_text(wh, write, rows):
    body = "".join(f"{i},{i}\n" for i in range(1, BEYOND_SAMPLE)) + f"{BEYOND_SAMPLE},XL\n"
    (report,) = ingest_files(wh, "items", [write("i.csv", "item_id,size\n" + body)])
    assert report.rows_inserted == BEYOND_SAMPLE
    assert wh.columns("items")["size"] == "VARCHAR"
    got = wh.con.execute(
        "SELECT item_id, size FROM items WHERE item_id IN (1, ?) ORDER BY 1", [BEYOND_SAMPLE]
    ).fetchall()
    assert got == [(1, "1"), (BEYOND_SAMPLE, "XL")]


def test_event_attribute_contradicted_after_the_sample(wh, write):
    rows_ = "".join(f"{i},1,2017-01-01,{i}\n" for i in range(1, BEYOND_SAMPLE))
    body = "customer_id,item_id,timestamp,till\n" + rows_ + f"{BEYOND_SAMPLE},1,2017-01-01,T9\n"
    (report,) = ingest_files(wh, "events", [write("e.csv", body)])
    assert report.rows_inserted == BEYOND_SAMPLE
    assert wh.columns("events")["till"] == "VARCHAR"


def test_json_attribute_contradicted_after_the_sample(wh, write, rows):
    body = "".join(f'{{"item_id": {i}, "size": {i}}}\n' for i in range(1, BEYOND_SAMPLE))
    body += f'{{"item_id": {BEYOND_SAMPLE}, "size": "XL"}}\n'
    (report,) = ingest_files(wh, "items", [write("i.jsonl", body)])
    assert report.rows_inserted == BEYOND_SAMPLE
    got = wh.con.execute("SELECT size FROM items WHERE item_id = ?", [BEYOND_SAMPLE]).fetchone()
    assert got == ("XL",)


def test_customers_consent_flags(wh, write, rows):
    path = write(
        "c.csv",
        "customer_id,consent_marketing,consent_personalization,consent_analytics\n"
        "1,yes,1,TRUE\n2,no,0,f\n3,Y,,N\n",
    )
    ingest_files(wh, "customers", [path])
    got = rows(
        wh,
        "customers",
        "customer_id",
        "consent_marketing",
        "consent_personalization",
        "consent_analytics",
    )
    assert got == [(1, True, True, True), (2, False, False, False), (3, True, None, False)]


def test_customers_upsert_and_attributes(wh, write, rows):
    ingest_files(
        wh, "customers", [write("a.csv", "customer_id,age_band,household_size\n1,25-34,2\n")]
    )
    (report,) = ingest_files(
        wh, "customers", [write("b.csv", "customer_id,age_band\n1,35-44\n2,19-24\n")]
    )
    assert counts(report) == (2, 1, 1, 0)
    assert wh.columns("customers")["household_size"] == "BIGINT"
    assert rows(wh, "customers", "customer_id", "age_band", "household_size") == [
        (1, "35-44", 2),
        (2, "19-24", None),
    ]


def test_campaigns_upsert(wh, write, rows):
    a = write("a.csv", "campaign_id,type,name,start,end\nC1,TypeA,Spring,2017-03-01,2017-03-31\n")
    b = write("b.csv", "campaign_id,name,end\nC1,Spring sale,2017-04-15\n")
    ingest_files(wh, "campaigns", [a])
    (report,) = ingest_files(wh, "campaigns", [b])
    assert counts(report) == (1, 0, 1, 0)
    assert rows(wh, "campaigns", "campaign_id", "type", "name", "start", "end") == [
        ("C1", "TypeA", "Spring sale", datetime(2017, 3, 1), datetime(2017, 4, 15))
    ]


def test_dimension_from_parquet_and_csv_is_the_same(wh, write):
    frame = pd.DataFrame({"item_id": [1, 2], "title": ["Milk", "Bread"], "price": [1.5, 2.0]})
    ingest_files(wh, "items", [write("i.csv", frame.to_csv(index=False))])
    (report,) = ingest_files(wh, "items", [write("i.parquet", frame)])
    assert counts(report) == (2, 0, 0, 2)


def test_items_from_json_lines(wh, write, rows):
    path = write("i.jsonl", '{"item_id": 4, "title": "Jam", "weight": 0.4}\n{"item_id": 5}\n')
    ingest_files(wh, "items", [path])
    assert wh.columns("items")["weight"] == "DOUBLE"
    assert rows(wh, "items", "item_id", "title", "weight") == [(4, "Jam", 0.4), (5, None, None)]
