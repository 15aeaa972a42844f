"""Invariants of event ingestion on random small tables, checked against pandas."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.store import Warehouse, ingest_files

BASE = 1_500_000_000  # 2017-07-14 02:40:00 UTC
KEY = ["customer_id", "item_id", "timestamp", "event_type", "quantity"]

ids = st.one_of(st.integers(0, 12), st.sampled_from(["a", "b", "007", "x-1"]))
# (customer, item, hours after BASE, how the timestamp is written, quantity)
rows = st.tuples(
    ids,
    ids,
    st.integers(0, 4),
    st.sampled_from(["epoch", "epoch_ms", "iso", "iso_z", "plus_two"]),
    st.integers(-3, 3),
)


@st.composite
def event_tables(draw) -> list[tuple]:
    """A few random events, some of them repeated, in random order."""
    drawn = draw(st.lists(rows, min_size=1, max_size=25))
    repeats = draw(st.lists(st.integers(0, len(drawn) - 1), max_size=10))
    return draw(st.permutations(drawn + [drawn[i] for i in repeats]))


def timestamp_text(hours: int, style: str) -> str:
    seconds = BASE + 3600 * hours
    utc = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    return {
        "epoch": str(seconds),
        "epoch_ms": str(seconds * 1000),
        "iso": utc.isoformat(sep=" "),
        "iso_z": utc.isoformat() + "Z",
        "plus_two": (utc + timedelta(hours=2)).isoformat() + "+02:00",
    }[style]


def to_csv(table: list[tuple]) -> str:
    lines = [f"{c},{i},{timestamp_text(h, s)},{q}" for c, i, h, s, q in table]
    return "customer_id,item_id,timestamp,quantity\n" + "\n".join(lines) + "\n"


def normalised(table: list[tuple]) -> pd.DataFrame:
    """The distinct events the warehouse should hold, worked out with pandas."""
    frame = pd.DataFrame(table, columns=["customer_id", "item_id", "hours", "style", "q"])
    quantity = frame["q"].astype(float)
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str),
            "item_id": frame["item_id"].astype(str),
            "timestamp": pd.to_datetime(BASE + 3600 * frame["hours"], unit="s"),
            "event_type": np.where(quantity < 0, "return", "purchase"),
            "quantity": quantity.abs(),
        }
    )
    return out.drop_duplicates(KEY)


def stored(wh: Warehouse) -> pd.DataFrame:
    return wh.con.execute(
        "SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
        "CAST(item_id AS VARCHAR) AS item_id, timestamp, event_type, quantity FROM events"
    ).df()


def as_set(frame: pd.DataFrame) -> set[tuple]:
    return set(frame[KEY].itertuples(index=False, name=None))


@settings(max_examples=25, deadline=None)
@given(event_tables())
def test_ingest_twice_matches_pandas(table):
    expected = normalised(table)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e.csv"
        path.write_text(to_csv(table))
        with Warehouse(Path(tmp) / "w.duckdb") as wh:
            (first,) = ingest_files(wh, "events", [path])
            (second,) = ingest_files(wh, "events", [path])
            got = stored(wh)

    assert first.rows_read == second.rows_read == len(table)
    assert first.rows_inserted == len(expected)
    assert first.rows_inserted + first.rows_unchanged == len(table)
    assert (second.rows_inserted, second.rows_unchanged) == (0, len(table))
    assert len(got) == len(expected)
    assert as_set(got) == as_set(expected)
    sums = got.groupby("event_type")["quantity"].sum().to_dict()
    assert sums == expected.groupby("event_type")["quantity"].sum().to_dict()


@settings(max_examples=15, deadline=None)
@given(event_tables(), st.data())
def test_split_into_two_files_gives_the_same_events(table, data):
    """Loading the rows as two files (perhaps widening an id domain in between) stores the
    same events as loading them as one."""
    cut = data.draw(st.integers(0, len(table)))
    with tempfile.TemporaryDirectory() as tmp:
        whole, first, second = (Path(tmp) / n for n in ("all.csv", "a.csv", "b.csv"))
        whole.write_text(to_csv(table))
        first.write_text(to_csv(table[:cut]) if cut else to_csv(table))
        second.write_text(to_csv(table[cut:]) if cut < len(table) else to_csv(table))
        with Warehouse(Path(tmp) / "one.duckdb") as wh:
            ingest_files(wh, "events", [whole])
            at_once = as_set(stored(wh))
        with Warehouse(Path(tmp) / "two.duckdb") as wh:
            ingest_files(wh, "events", [first])
            ingest_files(wh, "events", [second])
            in_two = as_set(stored(wh))
            (again,) = ingest_files(wh, "events", [whole])
    assert in_two == at_once
    assert again.rows_inserted == 0
