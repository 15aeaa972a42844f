"""tailor.store.append.append_events: events stored as ``tailor ingest`` stores them."""

from __future__ import annotations

import pandas as pd

from tailor.store import ingest_files
from tailor.store.append import append_events

EVENTS = pd.DataFrame(
    {
        "customer_id": [1, 1, 2],
        "item_id": [10, 11, 10],
        "event_type": ["purchase", "view", "purchase"],
        "timestamp": ["2024-03-01T10:00:00", "2024-03-01T10:05:00", "2024-03-02T09:00:00"],
        "quantity": [1.0, None, -2.0],
        "value": [2.5, None, -5.0],
        "basket_id": [100, 100, 101],
    }
)


def test_the_same_events_as_a_file_are_recognised_as_stored(make_warehouse):
    wh = make_warehouse(events=EVENTS)
    stored = wh.con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert append_events(wh, EVENTS) == 0  # the same row keys as the ingest gave
    new = EVENTS.iloc[[0]].assign(timestamp="2024-03-03T08:00:00")
    assert append_events(wh, new, source="test") == 1
    assert wh.con.execute("SELECT count(*) FROM events").fetchone()[0] == stored + 1
    log = wh.con.execute(
        "SELECT file, rows_read, rows_inserted FROM ingest_log ORDER BY ingest_id DESC LIMIT 1"
    ).fetchone()
    assert log == ("test", 1, 1)


def test_events_without_baskets_get_the_ingests_derived_baskets(make_warehouse):
    loose = EVENTS.drop(columns="basket_id")
    wh = make_warehouse(events=loose)
    assert wh.id_type("basket") == "VARCHAR"
    assert append_events(wh, loose) == 0
    baskets = wh.con.execute("SELECT DISTINCT basket_id FROM events ORDER BY 1").fetchall()
    assert baskets[0] == ("1@2024-03-01T10:00:00.000000",)


def test_returns_and_types_are_derived_as_ingest_derives_them(make_warehouse):
    wh = make_warehouse(events=EVENTS.iloc[[0]])
    append_events(wh, EVENTS.iloc[[2]].assign(timestamp=pd.Timestamp("2024-03-02 10:00+01:00")))
    row = wh.con.execute(
        "SELECT customer_id, event_type, quantity, value, timestamp FROM events WHERE item_id = 10 "
        "AND customer_id = 2"
    ).fetchone()
    assert row == (2, "return", 2.0, 5.0, pd.Timestamp("2024-03-02 09:00"))


def test_an_event_id_makes_retries_idempotent(make_warehouse):
    wh = make_warehouse(events=EVENTS)
    event = pd.DataFrame({"event_id": ["a-1"], "customer_id": [3], "item_id": [12],
                          "timestamp": [pd.Timestamp.now()]})  # fmt: skip
    assert append_events(wh, event) == 1
    later = event.assign(timestamp=pd.Timestamp.now() + pd.Timedelta(seconds=1))
    assert append_events(wh, pd.concat([later, later])) == 0


def test_a_text_id_widens_the_domain_and_keeps_the_stored_ids(make_warehouse, tmp_path):
    wh = make_warehouse(events=EVENTS)
    assert wh.id_type("customer") == "BIGINT"
    new = pd.DataFrame({"customer_id": ["00123", "C-9"], "item_id": [10, 11],
                        "timestamp": ["2024-04-01", "2024-04-01"]})  # fmt: skip
    assert append_events(wh, new) == 2
    assert wh.id_type("customer") == "VARCHAR" and wh.id_type("item") == "BIGINT"
    ids = {r[0] for r in wh.con.execute("SELECT DISTINCT customer_id FROM events").fetchall()}
    assert ids == {"1", "2", "00123", "C-9"}
    # Row keys were recomputed: the original file is still recognised.
    path = tmp_path / "events.csv"
    EVENTS.to_csv(path, index=False)
    assert ingest_files(wh, "events", [path])[0].rows_inserted == 0
