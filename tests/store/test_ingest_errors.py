"""Bad input: an InputError naming file, column and row, and a warehouse left as it was."""

from __future__ import annotations

import pandas as pd
import pytest

from tailor.errors import InputError, TailorError
from tailor.store import ingest_files

GOOD = "customer_id,item_id,timestamp\n1,2,2017-01-01\n"


@pytest.fixture
def loaded(wh, write):
    """A warehouse holding one event, customer and item, so that 'unchanged' means something."""
    ingest_files(wh, "events", [write("good.csv", GOOD)])
    ingest_files(wh, "items", [write("items.csv", "item_id,title\n2,Milk\n")])
    return wh


def refused(wh, snapshot, path, kind="events", **options) -> InputError:
    """Ingest ``path`` expecting an InputError; check nothing changed and return the error."""
    before = snapshot(wh)
    with pytest.raises(InputError) as info:
        ingest_files(wh, kind, [path], **options)
    assert snapshot(wh) == before
    assert info.value.file == str(path)
    assert str(info.value).startswith(str(path))
    return info.value


def test_missing_required_column_names_it_and_lists_the_columns(loaded, write, snapshot):
    error = refused(loaded, snapshot, write("e.csv", "customer_id,when\n1,2017-01-01\n"))
    assert "missing required column 'item_id'" in error.reason
    assert "'customer_id', 'when'" in error.reason
    assert "--map" in error.reason


def test_unknown_map_source_column(loaded, write, snapshot):
    path = write("e.csv", GOOD)
    error = refused(loaded, snapshot, path, mapping={"uid": "customer_id"})
    assert "--map uid=customer_id" in error.reason
    assert "no column 'uid'" in error.reason
    assert "'customer_id', 'item_id', 'timestamp'" in error.reason


def test_two_columns_mapped_to_one_target(loaded, write, snapshot):
    path = write("e.csv", "uid,client,item_id,timestamp\n1,9,2,2017-01-01\n")
    mapping = {"uid": "customer_id", "client": "customer_id"}
    error = refused(loaded, snapshot, path, mapping=mapping)
    assert "both 'uid' and 'client' would become 'customer_id'" in error.reason


def test_mapping_to_a_reserved_column(loaded, write, snapshot):
    error = refused(loaded, snapshot, write("e.csv", GOOD), mapping={"item_id": "row_key"})
    assert "reserved" in error.reason


def test_empty_file(loaded, write, snapshot):
    error = refused(loaded, snapshot, write("e.csv", ""))
    assert error.reason == "the file is empty"


def test_header_only_file(loaded, write, snapshot):
    error = refused(loaded, snapshot, write("e.csv", "customer_id,item_id,timestamp\n"))
    assert "no data rows" in error.reason


def test_header_only_dimension_file(loaded, write, snapshot):
    error = refused(loaded, snapshot, write("i.csv", "item_id,title\n"), kind="items")
    assert "no data rows" in error.reason


def test_missing_file(loaded, tmp_path, snapshot):
    error = refused(loaded, snapshot, tmp_path / "absent.csv")
    assert error.reason == "no such file"


def test_unknown_file_type(loaded, write, snapshot):
    error = refused(loaded, snapshot, write("e.xlsx", "x"))
    assert "unknown file type '.xlsx'" in error.reason


def test_unknown_kind(wh, write):
    with pytest.raises(TailorError, match="unknown kind 'sales'"):
        ingest_files(wh, "sales", [write("e.csv", GOOD)])


def test_no_files(wh):
    with pytest.raises(TailorError, match="no files"):
        ingest_files(wh, "events", [])


def test_wrong_delimiter_given(loaded, write, snapshot):
    path = write("e.csv", "customer_id;item_id;timestamp\n1;2;2017-01-01\n")
    error = refused(loaded, snapshot, path, delimiter=",")
    assert "single column" in error.reason
    assert "--delimiter" in error.reason


def test_file_that_reads_as_one_column(loaded, write, snapshot):
    path = write("e.csv", "customer_id\titem_id\ttimestamp\n1\t2\t2017-01-01\n")
    error = refused(loaded, snapshot, path, delimiter=";")
    assert "delimiter" in error.reason


def test_encoding_error_suggests_encoding(loaded, write, snapshot):
    latin = "customer_id,item_id,timestamp,title\n1,2,2017-01-01,café\n".encode("latin-1")
    error = refused(loaded, snapshot, write("e.csv", latin))
    assert "--encoding" in error.reason
    assert error.rows == [2]


def test_latin_1_loads_with_its_encoding(wh, write, rows):
    latin = "customer_id,item_id,timestamp,title\n1,2,2017-01-01,café\n".encode("latin-1")
    ingest_files(wh, "events", [write("e.csv", latin)], encoding="latin-1")
    assert rows(wh, "events", "title") == [("café",)]


def test_unparsable_number(loaded, write, snapshot):
    path = write(
        "e.csv",
        "customer_id,item_id,timestamp,quantity\n1,2,2017-01-01,1\n1,3,2017-01-01,two\n",
    )
    error = refused(loaded, snapshot, path)
    assert error.column == "quantity"
    assert error.rows == [3]
    assert "'two'" in error.reason
    assert "a number" in error.reason


def test_unparsable_number_in_a_dimension(loaded, write, snapshot):
    error = refused(loaded, snapshot, write("i.csv", "item_id,price\n1,cheap\n"), kind="items")
    assert (error.column, error.rows) == ("price", [2])


def test_unparsable_flag(loaded, write, snapshot):
    path = write("c.csv", "customer_id,consent_marketing\n1,yes\n2,maybe\n")
    error = refused(loaded, snapshot, path, kind="customers")
    assert (error.column, error.rows) == ("consent_marketing", [3])
    assert "yes/no" in error.reason


def test_bad_timestamp_names_the_source_column_and_line(loaded, write, snapshot):
    path = write(
        "e.csv",
        "uid,mid,when\n1,2,1500000000\n2,2,1500000000\n3,2,not a time\n4,2,1500000000\n",
    )
    mapping = {"uid": "customer_id", "mid": "item_id", "when": "timestamp"}
    error = refused(loaded, snapshot, path, mapping=mapping)
    assert error.column == "when"  # the file's own name, not the canonical one
    assert error.rows == [4]  # header is line 1: the third data row is line 4
    assert "'not a time'" in str(error)
    assert "line 4" in str(error)


def test_missing_required_value(loaded, write, snapshot):
    path = write("e.csv", "customer_id,item_id,timestamp\n1,2,2017-01-01\n,3,2017-01-01\n")
    error = refused(loaded, snapshot, path)
    assert error.column == "customer_id"
    assert error.rows == [3]
    assert "missing value" in error.reason


def test_whitespace_only_required_value_is_missing(loaded, write, snapshot):
    path = write("e.csv", 'customer_id,item_id,timestamp\n"  ",3,2017-01-01\n')
    error = refused(loaded, snapshot, path)
    assert (error.column, error.rows) == ("customer_id", [2])


def test_missing_required_value_in_parquet_counts_rows(loaded, write, snapshot):
    frame = pd.DataFrame(
        {"customer_id": [1.0, None, 3.0], "item_id": [1, 2, 3], "timestamp": ["2017-01-01"] * 3}
    )
    error = refused(loaded, snapshot, write("e.parquet", frame))
    assert (error.column, error.rows) == ("customer_id", [2])
    assert "row 2" in str(error)


def test_bad_rows_are_listed_and_counted(loaded, write, snapshot):
    body = "".join(f"{i},2,{'bad' if i % 2 else '2017-01-01'}\n" for i in range(20))
    error = refused(loaded, snapshot, write("e.csv", "customer_id,item_id,timestamp\n" + body))
    assert error.rows == [3, 5, 7, 9, 11]  # the first five
    assert error.n_bad == 10
    assert "10 bad rows in all" in str(error)
    assert "--skip-invalid" in str(error)


@pytest.mark.parametrize(
    ("line", "reason"),
    [("1,3,2017-01-01,extra", "Found: 4"), ("1,3", "Found: 2")],
    ids=["too-many-columns", "too-few-columns"],
)
def test_row_of_the_wrong_width(loaded, write, snapshot, line, reason):
    path = write(
        "e.csv", f"customer_id,item_id,timestamp\n1,2,2017-01-01\n{line}\n1,4,2017-01-01\n"
    )
    error = refused(loaded, snapshot, path)
    assert error.rows == [3]
    assert reason in error.reason


def test_row_of_the_wrong_width_with_delimiter_given(loaded, write, snapshot):
    path = write("e.csv", "customer_id,item_id,timestamp\n1,2,2017-01-01\n1,3,2017-01-01,x\n")
    error = refused(loaded, snapshot, path, delimiter=",")
    assert error.rows == [3]
    assert "Found: 4" in error.reason


def test_lines_are_counted_past_a_title_line(loaded, write, snapshot):
    path = write(
        "e.csv", "Sales export 2017\ncustomer_id,item_id,timestamp\n1,2,2017-01-01\n1,3,bad\n"
    )
    error = refused(loaded, snapshot, path)
    assert (error.column, error.rows) == ("timestamp", [4])


def test_malformed_json_lines(loaded, write, snapshot):
    path = write(
        "e.jsonl", '{"customer_id": 1, "item_id": 2, "timestamp": "2017-01-01"}\n{"customer_id": \n'
    )
    error = refused(loaded, snapshot, path)
    assert "JSON" in error.reason


def test_second_file_bad_loads_neither(loaded, write, snapshot):
    first = write("a.csv", "customer_id,item_id,timestamp\n100,200,2018-01-01\n")
    second = write("b.csv", "customer_id,item_id,timestamp\n101,201,xx\n")
    before = snapshot(loaded)
    with pytest.raises(InputError) as info:
        ingest_files(loaded, "events", [first, second])
    assert info.value.file == str(second)
    assert snapshot(loaded) == before
    first_rows = "SELECT count(*) FROM events WHERE customer_id = 100"
    assert loaded.con.execute(first_rows).fetchone() == (0,)
    assert loaded.con.execute("SELECT count(*) FROM ingest_log").fetchone() == (2,)


def test_second_file_bad_after_a_widening_first_file(loaded, write, snapshot):
    """The first file's text ids widened the domain; the rollback narrows it back."""
    first = write("a.csv", "customer_id,item_id,timestamp\nabc,200,2018-01-01\n")
    second = write("b.csv", "customer_id,item_id,timestamp\n")
    before = snapshot(loaded)
    with pytest.raises(InputError):
        ingest_files(loaded, "events", [first, second])
    assert snapshot(loaded) == before
    assert loaded.id_type("customer") == "BIGINT"


def test_second_dimension_file_bad_loads_neither(loaded, write, snapshot):
    first = write("a.csv", "item_id,title,colour\n2,Whole milk,white\n")
    second = write("b.csv", "item_id,price\n3,free\n")
    before = snapshot(loaded)
    with pytest.raises(InputError):
        ingest_files(loaded, "items", [first, second])
    assert snapshot(loaded) == before
    assert "colour" not in loaded.columns("items")


def test_warehouse_still_usable_after_an_error(loaded, write):
    with pytest.raises(InputError):
        ingest_files(loaded, "events", [write("bad.csv", "customer_id,item_id,timestamp\n1,2,x\n")])
    (report,) = ingest_files(
        loaded, "events", [write("ok.csv", "customer_id,item_id,timestamp\n7,8,2019-01-01\n")]
    )
    assert report.rows_inserted == 1
    assert loaded.stats()["events"] == 2
