"""--skip-invalid: the valid rows load; the others go, with line and reason, to a rejects file."""

from __future__ import annotations

import json

import pandas as pd

from tailor.store import ingest_files

HEADER = "customer_id,item_id,timestamp,quantity\n"


def rejects_of(report) -> pd.DataFrame:
    return pd.read_csv(report.rejects_file, dtype={"column": "string"}, keep_default_na=False)


def test_valid_rows_load_and_rejects_name_line_column_reason(wh, write, rows):
    path = write(
        "e.csv",
        HEADER
        + "1,10,2017-01-01,1\n"  # line 2
        + "1,11,notadate,1\n"  # line 3
        + ",12,2017-01-01,1\n"  # line 4
        + "1,13,2017-01-01,x\n"  # line 5
        + "1,14,2017-01-02,2\n",  # line 6
    )
    (report,) = ingest_files(wh, "events", [path], skip_invalid=True)
    assert (report.rows_read, report.rows_rejected, report.rows_inserted) == (5, 3, 2)
    assert report.rows_unchanged == 0
    assert report.rejects_file == str(path) + ".rejects.csv"
    assert rows(wh, "events", "item_id") == [(10,), (14,)]

    rejects = rejects_of(report)
    assert list(rejects.columns) == ["line", "column", "reason", "record"]
    assert rejects["line"].tolist() == [3, 4, 5]
    assert rejects["column"].tolist() == ["timestamp", "customer_id", "quantity"]
    assert "cannot read 'notadate' as a timestamp" in rejects["reason"][0]
    assert rejects["reason"][1] == "missing value for required column 'customer_id'"
    assert rejects["reason"][2] == "cannot read 'x' as a number"
    assert json.loads(rejects["record"][0]) == {
        "customer_id": "1",
        "item_id": "11",
        "timestamp": "notadate",
        "quantity": "1",
    }


def test_rejects_file_lies_beside_the_input(wh, tmp_path, write):
    (tmp_path / "in").mkdir()
    path = write("in/e.csv", HEADER + "1,10,bad,1\n1,11,2017-01-01,1\n")
    (report,) = ingest_files(wh, "events", [path], skip_invalid=True)
    assert (tmp_path / "in" / "e.csv.rejects.csv").is_file()
    assert report.rejects_file == str(tmp_path / "in" / "e.csv.rejects.csv")


def test_no_rejects_no_file(wh, write, tmp_path):
    path = write("e.csv", HEADER + "1,10,2017-01-01,1\n")
    (report,) = ingest_files(wh, "events", [path], skip_invalid=True)
    assert report.rejects_file is None
    assert report.rows_rejected == 0
    assert not (tmp_path / "e.csv.rejects.csv").exists()


def test_structural_errors_are_rejected_with_their_lines(wh, write, rows):
    path = write(
        "e.csv",
        HEADER
        + "1,10,2017-01-01,1\n"  # line 2
        + "1,11,2017-01-01,1,extra\n"  # line 3: too many columns
        + "1,12,bad,1\n"  # line 4: bad timestamp
        + "1,13\n"  # line 5: too few columns
        + "1,14,2017-01-02,2\n"  # line 6
        + "1,15,2017-01-02,x\n",  # line 7: bad number
    )
    (report,) = ingest_files(wh, "events", [path], skip_invalid=True)
    assert (report.rows_read, report.rows_rejected, report.rows_inserted) == (6, 4, 2)
    assert rows(wh, "events", "item_id") == [(10,), (14,)]
    rejects = rejects_of(report)
    assert rejects["line"].tolist() == [3, 4, 5, 7]
    assert rejects["column"].tolist() == ["", "timestamp", "", "quantity"]
    assert "Expected Number of Columns: 4 Found: 5" in rejects["reason"][0]
    assert "Found: 2" in rejects["reason"][2]
    assert rejects["record"][0] == "1,11,2017-01-01,1,extra"
    assert rejects["record"][2] == "1,13"


def test_line_numbers_after_a_skipped_line_are_counted_in_the_file(wh, write):
    """A structural reject early in the file must not shift the later lines' numbers."""
    body = "1,10,2017-01-01,1,extra\n" + "".join(f"1,{i},2017-01-01,1\n" for i in range(11, 20))
    body += "1,20,never,1\n"  # line 12
    (report,) = ingest_files(wh, "events", [write("e.csv", HEADER + body)], skip_invalid=True)
    assert rejects_of(report)["line"].tolist() == [2, 12]
    assert report.rows_inserted == 9


def test_skip_invalid_reingest_is_idempotent(wh, write, snapshot):
    path = write("e.csv", HEADER + "1,10,2017-01-01,1\n1,11,bad,1\n")
    ingest_files(wh, "events", [path], skip_invalid=True)
    before = snapshot(wh)
    (report,) = ingest_files(wh, "events", [path], skip_invalid=True)
    assert (report.rows_inserted, report.rows_rejected, report.rows_unchanged) == (0, 1, 1)
    assert snapshot(wh) == before


def test_skip_invalid_all_rows_bad_loads_nothing(wh, write):
    path = write("e.csv", HEADER + "1,10,bad,1\n")
    (report,) = ingest_files(wh, "events", [path], skip_invalid=True)
    assert (report.rows_read, report.rows_rejected, report.rows_inserted) == (1, 1, 0)
    assert wh.table_digest("events") == (0, 0)
    assert rejects_of(report)["line"].tolist() == [2]


def test_skip_invalid_dimension(wh, write, rows):
    path = write("i.csv", "item_id,price\n1,2.0\n2,cheap\n3,4\n")
    (report,) = ingest_files(wh, "items", [path], skip_invalid=True)
    assert (report.rows_read, report.rows_rejected, report.rows_inserted) == (3, 1, 2)
    assert rows(wh, "items", "item_id", "price") == [(1, 2.0), (3, 4.0)]
    rejects = rejects_of(report)
    assert rejects[["line", "column"]].values.tolist() == [[3, "price"]]


def test_skip_invalid_with_date_format(wh, write):
    path = write("e.csv", "customer_id,item_id,timestamp\n1,10,03-04-2017\n1,11,2017-04-03\n")
    (report,) = ingest_files(wh, "events", [path], skip_invalid=True, date_formats=["%d-%m-%Y"])
    rejects = rejects_of(report)
    assert rejects["line"].tolist() == [3]
    assert rejects["reason"][0] == "cannot read '2017-04-03' as a timestamp in format %d-%m-%Y"


def test_skip_invalid_json_lines(wh, write, rows):
    path = write(
        "e.jsonl",
        '{"customer_id": 1, "item_id": 10, "timestamp": "2017-01-01"}\n'
        '{"customer_id": 1, "item_id": 11, "timestamp": "soon"}\n',
    )
    (report,) = ingest_files(wh, "events", [path], skip_invalid=True)
    assert rows(wh, "events", "item_id") == [(10,)]
    assert rejects_of(report)[["line", "column"]].values.tolist() == [[2, "timestamp"]]


def test_skip_invalid_parquet_counts_rows(wh, write):
    frame = pd.DataFrame(
        {"customer_id": [1, 2, 3], "item_id": [1, 2, 3], "timestamp": ["2017-01-01", "x", "later"]}
    )
    (report,) = ingest_files(wh, "events", [write("e.parquet", frame)], skip_invalid=True)
    rejects = pd.read_csv(report.rejects_file)
    # Parquet has no lines: the rejects file counts rows (1-based) instead.
    assert list(rejects.columns) == ["row", "column", "reason", "record"]
    assert rejects["row"].tolist() == [2, 3]
