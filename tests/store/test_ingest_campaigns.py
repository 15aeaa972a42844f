"""Campaign members, offers and redemptions: fact tables keyed by their columns."""

from __future__ import annotations

from datetime import datetime

import pytest

from tailor.errors import InputError
from tailor.store import ingest_files


def test_campaign_members_load_once(wh, write, rows):
    path = write("m.csv", "campaign_id,customer_id\n1,10\n1,11\n2,10\n1,10\n")
    (first,) = ingest_files(wh, "campaign-members", [path])
    (second,) = ingest_files(wh, "campaign-members", [path])
    assert (first.rows_read, first.rows_inserted, first.rows_unchanged) == (4, 3, 1)
    assert (second.rows_inserted, second.rows_unchanged) == (0, 4)
    assert rows(wh, "campaign_members", "campaign_id", "customer_id") == [
        (1, 10),
        (1, 11),
        (2, 10),
    ]


def test_campaign_members_share_the_customer_domain(wh, write, rows):
    ingest_files(wh, "campaign-members", [write("m.csv", "campaign_id,customer_id\nC1,10\n")])
    ingest_files(wh, "customers", [write("c.csv", "customer_id\nabc\n")])
    assert wh.id_type("customer") == "VARCHAR"
    assert rows(wh, "campaign_members", "campaign_id", "customer_id") == [("C1", "10")]
    (report,) = ingest_files(
        wh, "campaign-members", [write("m2.csv", "campaign_id,customer_id\nC1,10\n")]
    )
    assert report.rows_inserted == 0


def test_offers_load_once_and_campaign_is_optional(wh, write, rows):
    a = write("o.csv", "offer_id,campaign_id,item_id\nA,1,100\nA,1,101\nB,2,100\n")
    b = write("o2.csv", "offer_id,item_id\nC,100\n")
    (first,) = ingest_files(wh, "offers", [a])
    (again,) = ingest_files(wh, "offers", [a])
    (other,) = ingest_files(wh, "offers", [b])
    (other_again,) = ingest_files(wh, "offers", [b])
    assert [r.rows_inserted for r in (first, again, other, other_again)] == [3, 0, 1, 0]
    assert rows(wh, "offers", "offer_id", "campaign_id", "item_id") == [
        ("A", 1, 100),
        ("A", 1, 101),
        ("B", 2, 100),
        ("C", None, 100),
    ]


def test_offers_need_an_item(wh, write):
    with pytest.raises(InputError, match="missing required column 'item_id'"):
        ingest_files(wh, "offers", [write("o.csv", "offer_id,campaign_id\nA,1\n")])


def test_redemptions_load_once_with_timestamps(wh, write, rows):
    path = write(
        "r.csv",
        "customer_id,offer_id,campaign_id,timestamp\n"
        "10,A,1,2017-03-05 10:00\n"
        "11,A,1,2017-03-06T12:00:00+01:00\n",
    )
    (first,) = ingest_files(wh, "redemptions", [path])
    (second,) = ingest_files(wh, "redemptions", [path])
    assert (first.rows_inserted, second.rows_inserted, second.rows_unchanged) == (2, 0, 2)
    assert rows(wh, "redemptions", "customer_id", "offer_id", "campaign_id", "timestamp") == [
        (10, "A", 1, datetime(2017, 3, 5, 10)),
        (11, "A", 1, datetime(2017, 3, 6, 11)),
    ]


def test_the_same_redemption_at_another_time_is_another_row(wh, write):
    path = write(
        "r.csv",
        "customer_id,offer_id,timestamp\n10,A,2017-03-05\n10,A,2017-03-05\n10,A,2017-03-06\n",
    )
    (report,) = ingest_files(wh, "redemptions", [path])
    assert (report.rows_inserted, report.rows_unchanged) == (2, 1)


def test_redemptions_bad_timestamp_is_refused(wh, write, snapshot):
    before = snapshot(wh)
    path = write("r.csv", "customer_id,offer_id,timestamp\n10,A,2017-03-05\n11,A,someday\n")
    with pytest.raises(InputError) as info:
        ingest_files(wh, "redemptions", [path])
    assert (info.value.column, info.value.rows) == ("timestamp", [3])
    assert snapshot(wh) == before


def test_campaign_tables_from_json_lines(wh, write, rows):
    path = write("m.jsonl", '{"campaign_id": "C1", "customer_id": 5}\n')
    ingest_files(wh, "campaign-members", [path])
    (report,) = ingest_files(wh, "campaign-members", [path])
    assert report.rows_inserted == 0
    assert rows(wh, "campaign_members", "campaign_id", "customer_id") == [("C1", 5)]
