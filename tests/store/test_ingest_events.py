"""Events: event types and returns, derived baskets, duplicates and idempotence, file formats."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from tailor.store import ingest_files


def test_negative_quantity_purchase_is_a_return(wh, write, rows):
    path = write(
        "e.csv",
        "customer_id,item_id,timestamp,quantity,value\n"
        "1,10,2017-01-01,2,5.0\n"
        "1,11,2017-01-02,-2,-5.5\n",
    )
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "item_id", "event_type", "quantity", "value") == [
        (10, "purchase", 2.0, 5.0),
        (11, "return", 2.0, 5.5),
    ]


def test_negative_value_without_quantity_is_a_return(wh, write, rows):
    path = write("e.csv", "customer_id,item_id,timestamp,value\n1,10,2017-01-01,-3.25\n")
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "event_type", "quantity", "value") == [("return", None, 3.25)]


def test_event_types_are_lower_cased_and_default_to_purchase(wh, write, rows):
    path = write(
        "e.csv",
        "customer_id,item_id,timestamp,event_type,quantity\n"
        "1,10,2017-01-01,PURCHASE,-1\n"
        "1,11,2017-01-01,View,1\n"
        "1,12,2017-01-01,,1\n"
        "1,13,2017-01-01, Cart ,1\n"
        "1,14,2017-01-01,Return,-1\n",
    )
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "item_id", "event_type", "quantity") == [
        (10, "return", 1.0),
        (11, "view", 1.0),
        (12, "purchase", 1.0),
        (13, "cart", 1.0),
        (14, "return", 1.0),
    ]


def test_negative_quantity_of_a_view_is_not_a_return(wh, write, rows):
    path = write(
        "e.csv", "customer_id,item_id,timestamp,event_type,quantity\n1,10,2017-01-01,view,-1\n"
    )
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "event_type", "quantity") == [("view", -1.0)]


def test_without_event_type_column_everything_is_a_purchase(wh, write, rows):
    path = write("e.csv", "customer_id,item_id,timestamp\n1,10,2017-01-01\n")
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "event_type") == [("purchase",)]


def test_derived_baskets_are_one_customer_at_one_moment(wh, rows, write):
    path = write(
        "e.csv",
        "customer_id,item_id,timestamp\n"
        "1,10,2017-01-01 10:00:00\n"
        "1,11,2017-01-01 10:00:00\n"
        "1,12,2017-01-01 10:00:01\n"
        "2,10,2017-01-01 10:00:00\n",
    )
    ingest_files(wh, "events", [path])
    basket = dict(
        ((c, i), b) for c, i, b in rows(wh, "events", "customer_id", "item_id", "basket_id")
    )
    assert basket[1, 10] == basket[1, 11]
    assert basket[1, 12] != basket[1, 10]  # one second later
    assert basket[2, 10] != basket[1, 10]  # another customer at the same moment
    assert len(set(basket.values())) == 3
    assert wh.stats()["baskets"] == 3


def test_given_basket_ids_are_kept(wh, write, rows):
    path = write(
        "e.csv",
        "customer_id,item_id,timestamp,basket_id\n"
        "1,10,2017-01-01,B1\n"
        "1,11,2017-01-02,B1\n"
        "1,12,2017-01-01,B2\n",
    )
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "item_id", "basket_id") == [(10, "B1"), (11, "B1"), (12, "B2")]


def test_exact_duplicate_rows_in_one_file_are_stored_once(wh, write, rows):
    path = write(
        "e.csv",
        "customer_id,item_id,timestamp,quantity\n"
        "1,10,2017-01-01,1\n"
        "1,10,2017-01-01,1\n"
        "1,10,2017-01-01,2\n"  # differs in quantity: a second event
        "1,10,2017-01-01,1\n",
    )
    (report,) = ingest_files(wh, "events", [path])
    assert (report.rows_read, report.rows_inserted, report.rows_unchanged) == (4, 2, 2)
    assert rows(wh, "events", "quantity") == [(1.0,), (2.0,)]


def test_repeated_event_id_is_stored_once(wh, write, rows):
    path = write(
        "e.csv",
        "event_id,customer_id,item_id,timestamp\n"
        "e7,1,10,2017-01-01\n"
        "e7,1,10,2017-01-01\n"
        "e8,1,10,2017-01-01\n",  # same content, another event id: a second event
    )
    (report,) = ingest_files(wh, "events", [path])
    assert (report.rows_inserted, report.rows_unchanged) == (2, 1)
    assert rows(wh, "events", "event_id") == [("e7",), ("e8",)]


def test_event_id_identifies_across_files_even_if_content_changed(wh, write, rows):
    first = write("a.csv", "event_id,customer_id,item_id,timestamp,quantity\n7,1,10,2017-01-01,1\n")
    second = write(
        "b.csv", "event_id,customer_id,item_id,timestamp,quantity\n7,1,10,2017-01-01,5\n"
    )
    ingest_files(wh, "events", [first])
    (report,) = ingest_files(wh, "events", [second])
    assert report.rows_inserted == 0
    assert rows(wh, "events", "event_id", "quantity") == [(7, 1.0)]


def test_same_file_twice_adds_nothing(wh, write, snapshot):
    path = write(
        "e.csv",
        "customer_id,item_id,timestamp,quantity,value\n1,10,2017-01-01,1,2\n2,11,2017-01-02,-1,-2\n",
    )
    (first,) = ingest_files(wh, "events", [path])
    before = snapshot(wh)
    (second,) = ingest_files(wh, "events", [path])
    assert (first.rows_inserted, first.rows_unchanged) == (2, 0)
    assert (second.rows_inserted, second.rows_unchanged) == (0, 2)
    assert snapshot(wh) == before


def test_overlapping_files_add_only_the_new_rows(wh, write):
    a = write("a.csv", "customer_id,item_id,timestamp\n1,10,2017-01-01\n1,11,2017-01-02\n")
    b = write("b.csv", "customer_id,item_id,timestamp\n1,11,2017-01-02\n1,12,2017-01-03\n")
    reports = ingest_files(wh, "events", [a, b])
    assert [(r.rows_inserted, r.rows_unchanged) for r in reports] == [(2, 0), (1, 1)]
    assert wh.stats()["events"] == 3


def test_report_counts_add_up(wh, write):
    path = write(
        "e.csv",
        "customer_id,item_id,timestamp\n1,10,2017-01-01\n1,10,2017-01-01\n1,11,2017-01-01\n",
    )
    (report,) = ingest_files(wh, "events", [path])
    assert report.kind == "events"
    assert report.file == str(path)
    assert report.rows_read == 3
    assert report.rows_rejected == 0
    assert report.rows_updated == 0
    assert report.rows_inserted + report.rows_unchanged + report.rows_rejected == report.rows_read
    assert report.rows_inserted == wh.stats()["events"] == 2
    assert report.rejects_file is None
    assert report.as_dict()["rows_read"] == 3


def csv_and_parquet(write, frame):
    return write("e.csv", frame.to_csv(index=False)), write("e.parquet", frame)


def test_same_rows_from_csv_and_parquet_are_recognised(wh, write):
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 2],
            "item_id": [10, 11, 12],
            "timestamp": pd.to_datetime(
                ["2017-01-01 10:00", "2017-01-02 11:30", "2017-01-02 00:00"]
            ),
            "quantity": [1.0, -2.0, 3.0],
            "value": [2.5, -4.0, 1.25],
            "channel": ["web", "store", "store"],
        }
    )
    csv, parquet = csv_and_parquet(write, frame)
    ingest_files(wh, "events", [csv])
    (report,) = ingest_files(wh, "events", [parquet])
    assert (report.rows_read, report.rows_inserted) == (3, 0)
    # And JSON lines of the same rows.
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    (report,) = ingest_files(wh, "events", [write("e.jsonl", frame)])
    assert (report.rows_read, report.rows_inserted) == (3, 0)
    assert wh.stats()["events"] == 3


def test_parquet_text_ids_meet_csv_integer_ids(wh, write):
    """A Parquet file with ids as strings '1' is the same data as a CSV with 1."""
    frame = pd.DataFrame({"customer_id": ["1"], "item_id": ["10"], "timestamp": ["2017-01-01"]})
    csv, parquet = csv_and_parquet(write, frame)
    ingest_files(wh, "events", [csv])
    (report,) = ingest_files(wh, "events", [parquet])
    assert report.rows_inserted == 0


def test_integer_quantity_in_parquet_meets_decimal_quantity_in_csv(wh, write):
    """Quantities are stored as DOUBLE whatever the source type, so 2 and 2.0 meet."""
    csv = write("e.csv", "customer_id,item_id,timestamp,quantity\n1,10,2017-01-01,2.0\n")
    frame = pd.DataFrame(
        {"customer_id": [1], "item_id": [10], "timestamp": ["2017-01-01"], "quantity": [2]}
    )
    ingest_files(wh, "events", [csv])
    (report,) = ingest_files(wh, "events", [write("e.parquet", frame)])
    assert report.rows_inserted == 0


def test_attributes_do_not_make_an_event_new(wh, write):
    """Row keys are computed on canonical columns only: a re-export that adds a column is still
    the same events."""
    ingest_files(wh, "events", [write("a.csv", "customer_id,item_id,timestamp\n1,10,2017-01-01\n")])
    b = write("b.csv", "customer_id,item_id,timestamp,promo\n1,10,2017-01-01,yes\n")
    (report,) = ingest_files(wh, "events", [b])
    assert report.rows_inserted == 0


def test_json_lines_load(wh, write, rows):
    path = write(
        "e.jsonl",
        '{"customer_id": 5, "item_id": 6, "timestamp": "2017-01-01T10:00:00", "quantity": 2}\n'
        '{"customer_id": 5, "item_id": 7, "timestamp": "2017-01-02", "quantity": -1}\n',
    )
    (report,) = ingest_files(wh, "events", [path])
    assert report.rows_inserted == 2
    assert rows(wh, "events", "customer_id", "item_id", "timestamp", "event_type", "quantity") == [
        (5, 6, datetime(2017, 1, 1, 10), "purchase", 2.0),
        (5, 7, datetime(2017, 1, 2), "return", 1.0),
    ]


def test_json_lines_with_mixed_id_types(wh, write, rows):
    """A JSON field with numbers and strings: ids keep the text the user wrote (no quotes)."""
    path = write(
        "e.jsonl",
        '{"customer_id": 5, "item_id": 6, "timestamp": "2017-01-01"}\n'
        '{"customer_id": "x5", "item_id": 6, "timestamp": "2017-01-01"}\n',
    )
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "customer_id") == [("5",), ("x5",)]
    (report,) = ingest_files(wh, "events", [path])
    assert report.rows_inserted == 0


@pytest.mark.parametrize("name", ["e.tsv", "e.txt"])
def test_tab_separated_files_load(wh, write, rows, name):
    path = write(name, "customer_id\titem_id\ttimestamp\tnote\n1\t2\t2017-01-01\ta, b; c\n")
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "customer_id", "item_id", "note") == [(1, 2, "a, b; c")]


def test_semicolon_separated_file_is_detected(wh, write, rows):
    path = write("e.csv", "customer_id;item_id;timestamp;value\n1;2;2017-01-01;3.5\n")
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "customer_id", "value") == [(1, 3.5)]


def test_explicit_delimiter(wh, write, rows):
    path = write("e.csv", "customer_id|item_id|timestamp\n1|2|2017-01-01\n")
    ingest_files(wh, "events", [path], delimiter="|")
    assert rows(wh, "events", "customer_id", "item_id") == [(1, 2)]


def test_gzipped_csv_loads(wh, tmp_path, rows):
    import gzip

    path = tmp_path / "e.csv.gz"
    path.write_bytes(gzip.compress(b"customer_id,item_id,timestamp\n1,2,2017-01-01\n"))
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "customer_id", "item_id") == [(1, 2)]


def test_a_title_line_above_the_header_is_skipped(wh, write, rows):
    path = write("e.csv", "Sales export 2017\ncustomer_id,item_id,timestamp\n1,2,2017-01-01\n")
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "customer_id", "item_id") == [(1, 2)]


def test_column_names_are_matched_loosely(wh, write, rows):
    """'Customer ID' and 'item-id' are the canonical customer_id and item_id."""
    path = write("e.csv", "Customer ID,item-id,TIMESTAMP\n1,2,2017-01-01\n")
    ingest_files(wh, "events", [path])
    assert rows(wh, "events", "customer_id", "item_id") == [(1, 2)]


def test_mapping_renames_and_keeps_unmapped_columns(wh, write, rows):
    path = write("e.csv", "uid,mid,when,stars,shop\n1,2,1500000000,4,north\n")
    mapping = {"uid": "customer_id", "mid": "item_id", "when": "timestamp", "stars": "value"}
    ingest_files(wh, "events", [path], mapping)
    assert rows(wh, "events", "customer_id", "item_id", "timestamp", "value", "shop") == [
        (1, 2, datetime(2017, 7, 14, 2, 40), 4.0, "north")
    ]
    assert "uid" not in wh.columns("events")


def test_mapped_column_takes_the_name_and_the_files_own_column_is_kept(wh, write, rows):
    path = write("e.csv", "customer_id,client,item_id,timestamp\n1,9,2,2017-01-01\n")
    ingest_files(wh, "events", [path], {"client": "customer_id"})
    assert rows(wh, "events", "customer_id", "source_customer_id") == [(9, 1)]


def test_extra_numeric_and_text_columns_become_typed_attributes(wh, write, rows):
    path = write("e.csv", "customer_id,item_id,timestamp,till,cashier\n1,2,2017-01-01,4,ann\n")
    ingest_files(wh, "events", [path])
    columns = wh.columns("events")
    assert columns["till"] == "BIGINT"
    assert columns["cashier"] == "VARCHAR"
    assert rows(wh, "events", "till", "cashier") == [(4, "ann")]
