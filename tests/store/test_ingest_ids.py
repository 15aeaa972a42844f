"""Id domains: BIGINT while every id is a plain integer, VARCHAR for good once one is not."""

from __future__ import annotations

import pandas as pd
import pytest

from tailor.store import ingest_files
from tailor.store.schema import domains

INTEGER_EVENTS = "customer_id,item_id,timestamp\n12,5,2017-01-01\n13,6,2017-01-02\n"
TEXT_EVENTS = "customer_id,item_id,timestamp\nabc,5,2017-01-03\n"


def domain_types(wh, domain):
    return {table: wh.columns(table)[column] for table, column in domains()[domain]}


def test_integer_ids_are_stored_as_bigint(wh, write, rows):
    ingest_files(wh, "events", [write("a.csv", INTEGER_EVENTS)])
    assert wh.id_type("customer") == "BIGINT"
    assert wh.id_type("item") == "BIGINT"
    assert set(domain_types(wh, "customer").values()) == {"BIGINT"}
    assert rows(wh, "events", "customer_id", "item_id") == [(12, 5), (13, 6)]


def test_a_text_id_widens_the_whole_domain(wh, write, rows):
    ingest_files(wh, "events", [write("a.csv", INTEGER_EVENTS)])
    ingest_files(wh, "customers", [write("c.csv", "customer_id,age\n12,30\n")])
    ingest_files(wh, "campaign-members", [write("m.csv", "campaign_id,customer_id\n1,13\n")])
    assert wh.id_type("customer") == "BIGINT"

    ingest_files(wh, "events", [write("b.csv", TEXT_EVENTS)])

    assert wh.id_type("customer") == "VARCHAR"
    assert set(domain_types(wh, "customer").values()) == {"VARCHAR"}
    assert rows(wh, "events", "customer_id") == [("12",), ("13",), ("abc",)]
    assert rows(wh, "customers", "customer_id", "age") == [("12", 30)]
    assert rows(wh, "campaign_members", "customer_id") == [("13",)]
    # Other domains keep their type.
    assert wh.id_type("item") == "BIGINT"
    assert rows(wh, "events", "item_id") == [(5,), (5,), (6,)]


def test_reingesting_the_integer_file_after_widening_adds_nothing(wh, write):
    first = write("a.csv", INTEGER_EVENTS)
    ingest_files(wh, "events", [first])
    ingest_files(wh, "events", [write("b.csv", TEXT_EVENTS)])
    (report,) = ingest_files(wh, "events", [first])
    assert (report.rows_read, report.rows_inserted, report.rows_unchanged) == (2, 0, 2)
    assert wh.stats()["events"] == 3


def test_integer_file_into_a_text_domain_matches_stored_ids(wh, write, rows):
    ingest_files(wh, "events", [write("b.csv", TEXT_EVENTS)])
    ingest_files(wh, "events", [write("a.csv", INTEGER_EVENTS)])
    assert wh.id_type("customer") == "VARCHAR"
    assert rows(wh, "events", "customer_id") == [("12",), ("13",), ("abc",)]
    assert wh.stats()["customers"] == 3


def test_leading_zeros_are_kept_exactly(wh, write, rows):
    path = write("e.csv", "customer_id,item_id,timestamp\n1,00123,2017-01-01\n1,123,2017-01-02\n")
    ingest_files(wh, "events", [path])
    assert wh.id_type("item") == "VARCHAR"
    assert rows(wh, "events", "item_id") == [("00123",), ("123",)]
    assert wh.stats()["items"] == 2  # "00123" and "123" are different products


def test_leading_zeros_in_a_dimension_file(wh, write, rows):
    ingest_files(wh, "items", [write("i.csv", "item_id,title\n007,Bond\n7,Seven\n")])
    assert wh.id_type("item") == "VARCHAR"
    assert rows(wh, "items", "item_id", "title") == [("007", "Bond"), ("7", "Seven")]


def test_negative_and_zero_integer_ids_stay_integers(wh, write, rows):
    path = write("e.csv", "customer_id,item_id,timestamp\n-4,0,2017-01-01\n")
    ingest_files(wh, "events", [path])
    assert wh.id_type("customer") == "BIGINT"
    assert rows(wh, "events", "customer_id", "item_id") == [(-4, 0)]


def test_ids_are_trimmed(wh, write, rows):
    path = write("e.csv", 'customer_id,item_id,timestamp\n" 12 ",A1 ,2017-01-01\n')
    ingest_files(wh, "events", [path])
    assert wh.id_type("customer") == "BIGINT"  # " 12 " is the integer 12
    assert rows(wh, "events", "customer_id", "item_id") == [(12, "A1")]


def test_float_parquet_ids_lose_their_point_zero(wh, write, rows):
    frame = pd.DataFrame(
        {"customer_id": [123.0, 7.0], "item_id": [1.0, 2.5], "timestamp": ["2017-01-01"] * 2}
    )
    ingest_files(wh, "events", [write("e.parquet", frame)])
    assert wh.id_type("customer") == "BIGINT"  # all whole: integers
    assert wh.id_type("item") == "VARCHAR"  # 2.5 is no integer
    assert rows(wh, "events", "customer_id", "item_id") == [(7, "2.5"), (123, "1")]


@pytest.mark.parametrize("skip_invalid", [False, True], ids=["fast", "careful"])
def test_whole_float_ids_are_integers_on_either_path(wh, write, rows, skip_invalid):
    frame = pd.DataFrame({"customer_id": [123.0], "item_id": [5.0], "timestamp": ["2017-01-01"]})
    ingest_files(wh, "events", [write("e.parquet", frame)], skip_invalid=skip_invalid)
    assert wh.id_type("customer") == "BIGINT"
    assert rows(wh, "events", "customer_id", "item_id") == [(123, 5)]


def test_float_ids_into_an_integer_domain(wh, write, rows):
    ingest_files(wh, "events", [write("a.csv", INTEGER_EVENTS)])
    frame = pd.DataFrame({"customer_id": [12.0], "item_id": [5.0], "timestamp": ["2017-01-01"]})
    (report,) = ingest_files(wh, "events", [write("e.parquet", frame)])
    assert report.rows_inserted == 0  # the same event as line 2 of a.csv
    assert wh.id_type("customer") == "BIGINT"


def test_float_parquet_ids_meet_the_same_integer_ids_from_csv(wh, write):
    frame = pd.DataFrame({"customer_id": [123.0], "item_id": [5.0], "timestamp": ["2017-01-01"]})
    ingest_files(wh, "events", [write("e.parquet", frame)])
    ingest_files(wh, "customers", [write("c.csv", "customer_id,segment\n123,gold\n")])
    stats = wh.stats()
    assert stats["customers"] == 1
    # The same event again, ids now as integers: recognised.
    (report,) = ingest_files(
        wh, "events", [write("e.csv", "customer_id,item_id,timestamp\n123,5,2017-01-01\n")]
    )
    assert report.rows_inserted == 0


def test_integer_parquet_ids_are_bigint(wh, write, rows):
    frame = pd.DataFrame(
        {"customer_id": [1, 2], "item_id": [3, 4], "timestamp": ["2017-01-01"] * 2}
    )
    ingest_files(wh, "events", [write("e.parquet", frame)])
    assert wh.id_type("customer") == "BIGINT"
    assert rows(wh, "events", "customer_id", "item_id") == [(1, 3), (2, 4)]


def test_empty_domain_narrows_back_to_bigint(wh, write):
    """A domain whose tables hold no id yet takes the type of the first ids it gets."""
    assert wh.id_type("customer") == "VARCHAR"  # open until the first ids arrive
    ingest_files(wh, "events", [write("a.csv", INTEGER_EVENTS)])
    assert wh.id_type("customer") == "BIGINT"
    assert wh.id_type("offer") == "VARCHAR"  # untouched: still open


def test_derived_basket_ids_are_text(wh, write):
    ingest_files(wh, "events", [write("a.csv", INTEGER_EVENTS)])
    assert wh.id_type("basket") == "VARCHAR"


def test_given_integer_basket_ids_stay_integers(wh, write, rows):
    path = write("e.csv", "customer_id,item_id,timestamp,basket_id\n1,2,2017-01-01,77\n")
    ingest_files(wh, "events", [path])
    assert wh.id_type("basket") == "BIGINT"
    assert rows(wh, "events", "basket_id") == [(77,)]
