"""Timestamps as retailers write them, each read to a naive UTC TIMESTAMP (worked by hand)."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from tailor.errors import InputError
from tailor.store import ingest_files


def load_timestamps(wh, write, texts, date_formats=(), name="e.csv"):
    """Ingest one event per text (customer i has the i-th) and return their timestamps."""
    body = "".join(f"{i},1,{text}\n" for i, text in enumerate(texts))
    path = write(name, "customer_id,item_id,timestamp\n" + body)
    ingest_files(wh, "events", [path], date_formats=date_formats)
    got = wh.con.execute("SELECT timestamp FROM events ORDER BY customer_id").fetchall()
    return [row[0] for row in got]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-04-03", datetime(2017, 4, 3)),
        ("2017-04-03T10:11:12", datetime(2017, 4, 3, 10, 11, 12)),
        ("2017-04-03 10:11:12", datetime(2017, 4, 3, 10, 11, 12)),
        ("2017-04-03T10:11:12.250", datetime(2017, 4, 3, 10, 11, 12, 250000)),
        ("2017-04-03 10:11:12.123456", datetime(2017, 4, 3, 10, 11, 12, 123456)),
        ("2017-04-03T10:11:12Z", datetime(2017, 4, 3, 10, 11, 12)),
        ("2017-04-03T10:11:12+02:00", datetime(2017, 4, 3, 8, 11, 12)),
        ("2017-04-03 10:11:12+02:00", datetime(2017, 4, 3, 8, 11, 12)),
        ("2017-04-03T01:30:00-05:00", datetime(2017, 4, 3, 6, 30)),
        ("2017-04-03T00:30:00+02:00", datetime(2017, 4, 2, 22, 30)),  # crosses midnight
        ("2017-04-03T10:11:12.5Z", datetime(2017, 4, 3, 10, 11, 12, 500000)),
        ("1500000000", datetime(2017, 7, 14, 2, 40)),
        ("1500000000000", datetime(2017, 7, 14, 2, 40)),
        ("1500000000.5", datetime(2017, 7, 14, 2, 40, 0, 500000)),
        ("0", datetime(1970, 1, 1)),
    ],
)
def test_one_format(wh, write, text, expected):
    assert load_timestamps(wh, write, [text]) == [expected]


def test_formats_mixed_in_one_column(wh, write):
    texts = ["2017-04-03", "2017-04-03T10:11:12Z", "2017-04-03 10:11:12+02:00", "1500000000"]
    assert load_timestamps(wh, write, texts) == [
        datetime(2017, 4, 3),
        datetime(2017, 4, 3, 10, 11, 12),
        datetime(2017, 4, 3, 8, 11, 12),
        datetime(2017, 7, 14, 2, 40),
    ]


def test_epoch_seconds_and_milliseconds_told_apart_by_size(wh, write):
    texts = ["1500000000", "1500000000000", "1500000060", "1500000060000"]
    expected = [datetime(2017, 7, 14, 2, 40)] * 2 + [datetime(2017, 7, 14, 2, 41)] * 2
    assert load_timestamps(wh, write, texts) == expected


def test_date_format_reads_day_first(wh, write):
    got = load_timestamps(wh, write, ["03-04-2017", "31-12-2016"], date_formats=["%d-%m-%Y"])
    assert got == [datetime(2017, 4, 3), datetime(2016, 12, 31)]


def test_several_date_formats(wh, write):
    formats = ["%d-%m-%Y", "%Y/%m/%d %H:%M"]
    got = load_timestamps(wh, write, ["03-04-2017", "2017/04/05 13:45"], date_formats=formats)
    assert got == [datetime(2017, 4, 3), datetime(2017, 4, 5, 13, 45)]


def test_date_format_with_offset_converts_to_utc(wh, write):
    got = load_timestamps(wh, write, ["03-04-2017 10:00 +0200"], date_formats=["%d-%m-%Y %H:%M %z"])
    assert got == [datetime(2017, 4, 3, 8, 0)]


def test_date_format_given_means_only_that_format(wh, write):
    """With --date-format, an ISO date is not silently read some other way."""
    with pytest.raises(InputError, match=r"in format %d-%m-%Y") as info:
        load_timestamps(wh, write, ["03-04-2017", "2017-04-05"], date_formats=["%d-%m-%Y"])
    assert info.value.column == "timestamp"
    assert info.value.rows == [3]


def test_slash_dates_need_a_format(wh, write):
    """03/04/2017 is 3 April or 4 March: ambiguous without --date-format."""
    with pytest.raises(InputError, match="--date-format"):
        load_timestamps(wh, write, ["03/04/2017"])


def test_parquet_native_timestamps(wh, write):
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "item_id": [1, 1],
            "timestamp": pd.to_datetime(["2017-04-03 10:11:12.5", "2017-04-04"], format="ISO8601"),
        }
    )
    ingest_files(wh, "events", [write("e.parquet", frame)])
    got = wh.con.execute("SELECT timestamp FROM events ORDER BY 1").fetchall()
    assert got == [(datetime(2017, 4, 3, 10, 11, 12, 500000),), (datetime(2017, 4, 4),)]


def test_parquet_timezone_aware_timestamps_become_utc(wh, write):
    local = pd.to_datetime(["2017-01-03 10:00", "2017-07-03 10:00"]).tz_localize("Europe/Berlin")
    frame = pd.DataFrame({"customer_id": [1, 2], "item_id": [1, 1], "timestamp": local})
    ingest_files(wh, "events", [write("e.parquet", frame)])
    got = wh.con.execute("SELECT timestamp FROM events ORDER BY 1").fetchall()
    # Berlin is UTC+1 in winter and UTC+2 in summer.
    assert got == [(datetime(2017, 1, 3, 9),), (datetime(2017, 7, 3, 8),)]


def test_parquet_dates(wh, write):
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "item_id": [1, 1],
            "timestamp": [date(2017, 4, 3), date(2016, 2, 29)],
        }
    )
    ingest_files(wh, "events", [write("e.parquet", frame)])
    got = wh.con.execute("SELECT timestamp FROM events ORDER BY 1").fetchall()
    assert got == [(datetime(2016, 2, 29),), (datetime(2017, 4, 3),)]


def test_parquet_epoch_integers(wh, write):
    frame = pd.DataFrame(
        {"customer_id": [1, 2], "item_id": [1, 1], "timestamp": [1500000000, 1500000000000]}
    )
    ingest_files(wh, "events", [write("e.parquet", frame)])
    got = wh.con.execute("SELECT DISTINCT timestamp FROM events").fetchall()
    assert got == [(datetime(2017, 7, 14, 2, 40),)]


def test_json_lines_timestamps(wh, write):
    path = write(
        "e.jsonl",
        '{"customer_id": 1, "item_id": 1, "timestamp": "2017-04-03T10:00:00+02:00"}\n'
        '{"customer_id": 2, "item_id": 1, "timestamp": "2017-04-03"}\n',
    )
    ingest_files(wh, "events", [path])
    got = wh.con.execute("SELECT timestamp FROM events ORDER BY customer_id").fetchall()
    assert got == [(datetime(2017, 4, 3, 8),), (datetime(2017, 4, 3),)]


def test_json_lines_mixing_text_and_epoch_numbers(wh, write):
    """A JSON field holding both strings and numbers is typed JSON by DuckDB."""
    path = write(
        "e.jsonl",
        '{"customer_id": 1, "item_id": 1, "timestamp": "2017-04-03T10:00:00Z"}\n'
        '{"customer_id": 2, "item_id": 1, "timestamp": 1500000000}\n',
    )
    ingest_files(wh, "events", [path])
    got = wh.con.execute("SELECT timestamp FROM events ORDER BY customer_id").fetchall()
    assert got == [(datetime(2017, 4, 3, 10),), (datetime(2017, 7, 14, 2, 40),)]


def test_redemption_and_campaign_timestamps_are_parsed_too(wh, write):
    campaigns = write("c.csv", "campaign_id,start,end\n1,03-04-2017,30-04-2017\n")
    ingest_files(wh, "campaigns", [campaigns], date_formats=["%d-%m-%Y"])
    got = wh.con.execute('SELECT start, "end" FROM campaigns').fetchall()
    assert got == [(datetime(2017, 4, 3), datetime(2017, 4, 30))]
