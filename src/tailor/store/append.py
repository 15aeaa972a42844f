"""Append a few events to the warehouse as they happen (the HTTP API's ``POST /v1/events``).

The rows end up exactly as ``tailor ingest events`` would store them: the same canonical columns
and types, the same derived values (a purchase with a negative quantity is a return; an event
without a basket is its customer's basket at that moment), the same ``row_key`` (so an event
sent twice, or sent and later found in a file, is stored once) and an ``ingest_log`` entry.

Ids follow the warehouse's id domains: while a domain is stored as BIGINT, integer ids are
stored as integers, and a text id (or one with leading zeros, like ``"00123"``) widens the
domain to VARCHAR for good, as ingesting a file with such an id does (this rewrites the tables
of the domain: seconds on millions of rows, once).
"""

from __future__ import annotations

import re
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from tailor.errors import TailorError
from tailor.store.parse import INTEGER_ID_RE
from tailor.store.schema import (
    INGEST_ID,
    KINDS,
    ROW_KEY,
    TableSpec,
    domains,
    quote,
    row_key_sql,
)
from tailor.store.warehouse import Warehouse

EVENT_COLUMNS = (
    "event_id",
    "customer_id",
    "item_id",
    "event_type",
    "timestamp",
    "quantity",
    "value",
    "basket_id",
)
"""The columns :func:`append_events` reads; only customer_id, item_id and timestamp are needed."""

_INTEGER_ID = re.compile(INTEGER_ID_RE)
_FRAME = "__tailor_append"


def append_events(wh: Warehouse, frame: pd.DataFrame, source: str = "api") -> int:
    """Store ``frame``'s events in the warehouse's events table, in one committed transaction.

    Parameters
    ----------
    frame : DataFrame
        One row per event with columns of :data:`EVENT_COLUMNS` (missing ones are NULL): ids as
        text or integers, ``event_type`` (default ``purchase``), ``timestamp`` (timezone-aware
        values are converted to UTC; naive ones are taken as UTC), ``quantity``, ``value``.
    source : str
        What the ``ingest_log`` entry names as the file.

    Returns
    -------
    int
        Events added: an event whose key is stored already (the same ``event_id``, or without
        one the same content) is not added again.
    """
    missing = {"customer_id", "item_id", "timestamp"} - set(frame.columns)
    if missing:
        raise TailorError(f"events: missing column(s) {', '.join(sorted(missing))}")
    if frame.empty:
        return 0
    canonical = _canonical(frame)
    spec = KINDS["events"]
    # On a cursor of its own: a connection DuckDB has an unfinished result on refuses to
    # register a frame, and the caller's connection may have one.
    wh = wh.cursor()
    try:
        # As Arrow: DuckDB scans Arrow without holding the GIL (Python objects need it), so a
        # server's other threads go on meanwhile.
        wh.con.register(_FRAME, pa.Table.from_pandas(canonical, preserve_index=False))
        with wh.transaction():
            types = _column_types(wh)
            changed = False
            for column in ("event_id", "customer_id", "item_id", "basket_id"):
                values = canonical[column].dropna()
                if len(values):
                    integral = bool(values.map(_is_integer_id).all())
                    changed |= _decide_id_type(wh, types, column.removesuffix("_id"), integral)
            if canonical["basket_id"].isna().any() and types["events", "basket_id"] != "VARCHAR":
                wh.set_id_type("basket", "VARCHAR")  # derived basket ids are text, as in ingest
                changed = True
            if changed:
                wh.refresh_row_keys()
                types = _column_types(wh)
            stored = {c: t for (table, c), t in types.items() if table == "events"}
            ingest_id = wh.next_ingest_id()
            added = _changed(wh.con.execute(_insert_sql(spec, stored, ingest_id)))
            wh.con.execute(
                "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [ingest_id, datetime.now(), "events", source, len(canonical), 0, added, 0,
                 len(canonical) - added],
            )  # fmt: skip
    finally:
        wh.con.close()
    return added


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Ids as stripped text (None for missing), event types in lower case, timestamps as naive
    UTC, numbers as floats; one column per :data:`EVENT_COLUMNS`, plus the row order."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for column in ("event_id", "customer_id", "item_id", "basket_id"):
        values = frame[column] if column in frame else pd.Series([None] * len(frame))
        out[column] = [_id_text(v) for v in values]  # a handful of events: formatting only
    for column in ("customer_id", "item_id"):
        if out[column].isna().any():
            raise TailorError(f"events: {column} is missing")
    kinds = frame["event_type"] if "event_type" in frame else pd.Series([None] * len(frame))
    out["event_type"] = kinds.fillna("purchase").astype(str).str.strip().str.lower().to_numpy()
    stamps = pd.to_datetime(
        pd.Series(frame["timestamp"].to_numpy()), utc=True, errors="coerce", format="ISO8601"
    )
    if stamps.isna().any():
        raise TailorError("events: timestamp is missing or unreadable")
    out["timestamp"] = stamps.dt.tz_localize(None).astype("datetime64[us]").to_numpy()
    for column in ("quantity", "value"):
        values = frame[column] if column in frame else pd.Series([np.nan] * len(frame))
        out[column] = pd.to_numeric(values, errors="raise").astype("float64").to_numpy()
    out["__row"] = np.arange(len(out), dtype=np.int64)
    return out


def _id_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _is_integer_id(text: str) -> bool:
    return _INTEGER_ID.fullmatch(text) is not None


def _column_types(wh: Warehouse) -> dict[tuple[str, str], str]:
    """(table, column) -> DuckDB type of every column, in one catalog query (``wh.columns`` per
    table would cost a query each)."""
    rows = wh.con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND database_name = current_database()"
    ).fetchall()
    return {(table, column): sql_type for table, column, sql_type in rows}


def _decide_id_type(
    wh: Warehouse, types: dict[tuple[str, str], str], domain: str, integral: bool
) -> bool:
    """As the ingest decides it: a non-integer id widens a BIGINT domain to VARCHAR for good; an
    empty VARCHAR domain given integers becomes BIGINT. Returns whether a type changed."""
    current = types[domains()[domain][0]]
    if current == "BIGINT" and not integral:
        wh.set_id_type(domain, "VARCHAR")
        return True
    if current == "VARCHAR" and integral and wh.id_domain_empty(domain):
        wh.set_id_type(domain, "BIGINT")
        return True
    return False


def _insert_sql(spec: TableSpec, stored: dict[str, str], ingest_id: int) -> str:
    """INSERT of the registered frame into events: typed as stored, derived as the ingest
    derives, keyed by :func:`tailor.store.schema.row_key_sql`; stored keys and repeats skipped."""
    canonical = [c.name for c in spec.columns]

    def typed(name: str) -> str:
        if name in EVENT_COLUMNS:
            return f"CAST({quote(name)} AS {stored[name]})"
        return f"CAST(NULL AS {stored[name]})"

    kind, qty, val = typed("event_type"), typed("quantity"), typed("value")
    is_return = (
        f"({kind} = 'return' OR ({kind} = 'purchase' "
        f"AND ({qty} < 0 OR ({qty} IS NULL AND {val} < 0))))"
    )
    exprs = {name: typed(name) for name in canonical}
    exprs["event_type"] = f"CASE WHEN {is_return} THEN 'return' ELSE {kind} END"
    exprs["quantity"] = f"CASE WHEN {is_return} THEN abs({qty}) ELSE {qty} END"
    exprs["value"] = f"CASE WHEN {is_return} THEN abs({val}) ELSE {val} END"
    customer, stamp = typed("customer_id"), typed("timestamp")
    derived_basket = (
        f"CAST({customer} AS VARCHAR) || '@' || strftime({stamp}, '%Y-%m-%dT%H:%M:%S.%f')"
    )
    if stored["basket_id"] == "VARCHAR":
        exprs["basket_id"] = f"coalesce({typed('basket_id')}, {derived_basket})"
    select = ", ".join(f"{e} AS {quote(n)}" for n, e in exprs.items())
    names = ", ".join(quote(n) for n in canonical)
    keyed = (
        f"SELECT {names}, {row_key_sql(spec)} AS {ROW_KEY}, __row "
        f"FROM (SELECT {select}, __row FROM {_FRAME})"
    )
    # Keys are compared with a semi-join that builds on the few new rows (a NOT EXISTS would
    # build on the whole events table at every call).
    return (
        f"INSERT INTO events ({names}, {ROW_KEY}, {INGEST_ID}) "
        f"WITH keyed AS ({keyed}), "
        f"stored AS (SELECT {ROW_KEY} FROM events "
        f"WHERE {ROW_KEY} IN (SELECT {ROW_KEY} FROM keyed)) "
        f"SELECT {names}, {ROW_KEY}, {ingest_id} FROM keyed "
        f"WHERE {ROW_KEY} NOT IN (SELECT {ROW_KEY} FROM stored) "
        f"QUALIFY row_number() OVER (PARTITION BY {ROW_KEY} ORDER BY __row) = 1"
    )


def _changed(result: duckdb.DuckDBPyConnection) -> int:
    row = result.fetchone()
    return int(row[0]) if row and isinstance(row[0], int) else 0
