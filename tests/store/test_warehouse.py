"""Tests for tailor.store.warehouse: schema versions, opening modes, digests, stats, row keys."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from tailor.errors import WarehouseError
from tailor.store import KINDS, Warehouse, ingest_files
from tailor.store.schema import SCHEMA_VERSION, domains

EVENTS = "customer_id,item_id,timestamp\n1,10,2017-01-01 10:00:00\n2,11,2017-01-02\n"


def test_fresh_warehouse_is_at_schema_version_1(tmp_path):
    path = tmp_path / "w.duckdb"
    Warehouse(path).close()
    con = duckdb.connect(str(path), read_only=True)
    version = con.execute("SELECT value FROM tailor_meta WHERE key = 'schema_version'").fetchone()
    con.close()
    assert SCHEMA_VERSION == 1
    assert version == ("1",)


def test_fresh_warehouse_has_every_canonical_table_empty(wh):
    for spec in KINDS.values():
        columns = wh.columns(spec.table)
        assert list(columns)[: len(spec.names)] == list(spec.names)
        assert wh.con.execute(f"SELECT count(*) FROM {spec.table}").fetchone() == (0,)
    assert wh.columns("events")["timestamp"] == "TIMESTAMP"
    assert wh.columns("events")["quantity"] == "DOUBLE"
    assert wh.columns("customers")["consent_marketing"] == "BOOLEAN"


def test_reopening_keeps_data_and_version(tmp_path, write):
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        ingest_files(wh, "events", [write("e.csv", EVENTS)])
    with Warehouse(path, read_only=True) as wh:
        assert wh.get_meta("schema_version") == "1"
        assert wh.stats()["events"] == 2


def test_newer_schema_version_is_refused(tmp_path):
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        wh.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    for read_only in (False, True):
        with pytest.raises(WarehouseError, match="newer Tailor"):
            Warehouse(path, read_only=read_only)


def test_missing_file_is_refused_unless_created(tmp_path):
    path = tmp_path / "absent.duckdb"
    with pytest.raises(WarehouseError, match="no warehouse here"):
        Warehouse(path, read_only=True)
    with pytest.raises(WarehouseError, match="no warehouse here"):
        Warehouse(path, create=False)
    assert not path.exists()


def test_a_file_that_is_not_duckdb_is_refused(tmp_path):
    path = tmp_path / "w.duckdb"
    path.write_text("customer_id,item_id\n1,2\n")
    with pytest.raises(WarehouseError, match=str(path)):
        Warehouse(path)


def test_unversioned_duckdb_file_needs_a_writable_open(tmp_path):
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(WarehouseError, match="needs migrating"):
        Warehouse(path, read_only=True)
    with Warehouse(path) as wh:  # a writable open migrates it
        assert wh.get_meta("schema_version") == "1"


def test_stats_known_answer(wh, write):
    write_events = write(
        "e.csv",
        "customer_id,item_id,timestamp,event_type,quantity\n"
        "1,10,2017-01-01 10:00:00,purchase,1\n"
        "1,11,2017-01-01 10:00:00,purchase,2\n"
        "2,10,2017-01-03,view,1\n"
        "2,12,2017-01-05,purchase,-1\n",
    )
    ingest_files(wh, "events", [write_events])
    ingest_files(wh, "items", [write("i.csv", "item_id,title\n10,Milk\n99,Never bought\n")])
    stats = wh.stats()
    assert stats["customers"] == 2
    assert stats["items"] == 4  # 10, 11, 12 from events plus 99 from the catalog
    assert stats["events"] == 4
    assert stats["baskets"] == 3  # customer 1's two lines share one basket
    assert stats["first_event"] == "2017-01-01T10:00:00"
    assert stats["last_event"] == "2017-01-05T00:00:00"
    assert stats["event_types"] == {"purchase": 2, "return": 1, "view": 1}
    assert stats["tables"]["events"] == 4
    assert stats["tables"]["items"] == 2
    assert stats["schema_version"] == 1


def test_stats_of_an_empty_warehouse(wh):
    stats = wh.stats()
    assert stats["events"] == stats["customers"] == stats["items"] == 0
    assert stats["first_event"] is None
    assert stats["event_types"] == {}


def test_table_digest_tracks_contents_not_order(wh):
    wh.con.execute("CREATE TABLE t (a INTEGER, b VARCHAR)")
    assert wh.table_digest("t") == (0, 0)
    wh.con.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y')")
    first = wh.table_digest("t")
    wh.con.execute("DELETE FROM t")
    wh.con.execute("INSERT INTO t VALUES (2, 'y'), (1, 'x')")
    assert wh.table_digest("t") == first
    wh.con.execute("UPDATE t SET b = 'z' WHERE a = 2")
    assert wh.table_digest("t")[0] == 2
    assert wh.table_digest("t") != first


def test_transaction_rolls_back_on_error(wh):
    wh.con.execute("CREATE TABLE t (a INTEGER)")
    with pytest.raises(RuntimeError), wh.transaction():
        wh.con.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    assert wh.table_digest("t") == (0, 0)


def test_id_domains_cover_every_id_column():
    found = domains()
    assert sorted(found["customer"]) == [
        ("campaign_members", "customer_id"),
        ("customers", "customer_id"),
        ("events", "customer_id"),
        ("redemptions", "customer_id"),
    ]
    assert ("offers", "item_id") in found["item"]
    assert ("items", "item_id") in found["item"]


def test_row_keys_are_recomputed_when_the_hash_changes(tmp_path, write):
    """A DuckDB that hashes differently must still recognise a re-ingested file."""
    path, events = tmp_path / "w.duckdb", write("e.csv", EVENTS)
    with Warehouse(path) as wh:
        ingest_files(wh, "events", [events])
        # Pretend an older DuckDB wrote the keys: they are wrong and the probe differs.
        wh.con.execute("UPDATE events SET row_key = 0")
        wh.set_meta("hash_probe", "written by another DuckDB")
    with Warehouse(path) as wh:
        assert wh.con.execute("SELECT count(DISTINCT row_key) FROM events").fetchone() == (2,)
        (report,) = ingest_files(wh, "events", [events])
        assert report.rows_inserted == 0
        assert wh.stats()["events"] == 2


def test_ingest_log_records_each_file(wh, write):
    events = write("e.csv", EVENTS)
    ingest_files(wh, "events", [events])
    ingest_files(wh, "events", [events])
    log = wh.con.execute(
        "SELECT ingest_id, kind, file, rows_read, rows_inserted, rows_unchanged, ingested_at "
        "FROM ingest_log ORDER BY ingest_id"
    ).fetchall()
    assert [row[:6] for row in log] == [
        (1, "events", str(events.resolve()), 2, 2, 0),
        (2, "events", str(events.resolve()), 2, 0, 2),
    ]
    assert all(isinstance(row[6], datetime) for row in log)
    assert wh.con.execute("SELECT DISTINCT ingest_id FROM events").fetchall() == [(1,)]
