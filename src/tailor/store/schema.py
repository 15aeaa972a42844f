"""Canonical tables of the warehouse, and the migrations that create them.

A table's canonical columns have fixed names and types; any other column of an ingested file is
kept beside them as an attribute (added with ``ALTER TABLE ... ADD COLUMN`` when first seen).
Ids of customers, items, baskets, stores, campaigns and offers are stored as text, so that integer
and string ids from different sources meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["id", "text", "number", "timestamp", "flag", "event_type"]

SQL_TYPES: dict[str, str] = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "number": "DOUBLE",
    "timestamp": "TIMESTAMP",
    "flag": "BOOLEAN",
    "event_type": "VARCHAR",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    required: bool = False

    @property
    def domain(self) -> str | None:
        """The id domain (customer, item, ...) an id column draws from; None for other kinds.

        All columns of one domain share one storage type: BIGINT while every id seen is a plain
        integer (smaller and much faster to load and join), widened to VARCHAR for good when a
        text id (or one with leading zeros, like a UPC "00123") arrives.
        """
        return self.name.removesuffix("_id") if self.kind == "id" else None


@dataclass(frozen=True)
class TableSpec:
    """One canonical table and how files of its kind are merged into it.

    ``mode`` is ``"append"`` for facts (a row whose key is already stored is skipped, so the same
    file ingested twice adds nothing) and ``"upsert"`` for dimensions (a stored key gets the new
    file's attribute values, a new key is inserted).
    """

    kind: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    mode: Literal["append", "upsert"]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


EVENT_TYPES = ("purchase", "view", "cart", "rating", "return")

KINDS: dict[str, TableSpec] = {
    spec.kind: spec
    for spec in (
        TableSpec(
            "events",
            "events",
            (
                Column("event_id", "id"),
                Column("customer_id", "id", required=True),
                Column("item_id", "id", required=True),
                Column("event_type", "event_type"),
                Column("timestamp", "timestamp", required=True),
                Column("quantity", "number"),
                Column("value", "number"),
                Column("basket_id", "id"),
                Column("store_id", "id"),
                Column("channel", "text"),
                Column("discount", "number"),
            ),
            key=("event_id",),
            mode="append",
        ),
        TableSpec(
            "items",
            "items",
            (
                Column("item_id", "id", required=True),
                Column("title", "text"),
                Column("description", "text"),
                Column("department", "text"),
                Column("category", "text"),
                Column("subcategory", "text"),
                Column("brand", "text"),
                Column("price", "number"),
            ),
            key=("item_id",),
            mode="upsert",
        ),
        TableSpec(
            "customers",
            "customers",
            (
                Column("customer_id", "id", required=True),
                Column("consent_personalization", "flag"),
                Column("consent_marketing", "flag"),
                Column("consent_analytics", "flag"),
            ),
            key=("customer_id",),
            mode="upsert",
        ),
        TableSpec(
            "campaigns",
            "campaigns",
            (
                Column("campaign_id", "id", required=True),
                Column("type", "text"),
                Column("name", "text"),
                Column("start", "timestamp"),
                Column("end", "timestamp"),
            ),
            key=("campaign_id",),
            mode="upsert",
        ),
        TableSpec(
            "campaign-members",
            "campaign_members",
            (
                Column("campaign_id", "id", required=True),
                Column("customer_id", "id", required=True),
            ),
            key=("campaign_id", "customer_id"),
            mode="append",
        ),
        TableSpec(
            "offers",
            "offers",
            (
                Column("offer_id", "id", required=True),
                Column("campaign_id", "id"),
                Column("item_id", "id", required=True),
            ),
            key=("offer_id", "campaign_id", "item_id"),
            mode="append",
        ),
        TableSpec(
            "redemptions",
            "redemptions",
            (
                Column("customer_id", "id", required=True),
                Column("offer_id", "id"),
                Column("campaign_id", "id"),
                Column("timestamp", "timestamp", required=True),
            ),
            key=("customer_id", "offer_id", "campaign_id", "timestamp"),
            mode="append",
        ),
    )
}


def consented(purpose: str) -> str:
    """SQL condition on a ``customer_id`` column: the customer did not opt out of ``purpose``
    (personalization, marketing or analytics; only an explicit false is an opt-out)."""
    return f"customer_id NOT IN (SELECT customer_id FROM customers WHERE consent_{purpose} = false)"


ANALYTICS_CONSENTED = consented("analytics")
"""Every query that trains a model, builds a segment or feeds a report filters with it."""


def quote(name: str) -> str:
    """Quote an SQL identifier (column names come from users' files)."""
    return '"' + name.replace('"', '""') + '"'


# Bookkeeping columns: ``row_key`` identifies a fact row (so that re-ingesting a file adds
# nothing), ``ingest_id`` names the ingest (see table ``ingest_log``) that wrote the row.
ROW_KEY = "row_key"
INGEST_ID = "ingest_id"
SYSTEM_COLUMNS = (ROW_KEY, INGEST_ID)


def domains() -> dict[str, list[tuple[str, str]]]:
    """Id domain -> the (table, column) pairs that hold its ids."""
    found: dict[str, list[tuple[str, str]]] = {}
    for spec in KINDS.values():
        for c in spec.columns:
            if c.domain:
                found.setdefault(c.domain, []).append((spec.table, c.name))
    return found


def hash128(args: list[str]) -> str:
    """SQL for a 128-bit hash of ``args``, from two of DuckDB's 64-bit hashes.

    DuckDB's ``hash`` is fast on typed values (md5 would need every value cast to text, several
    times slower on large loads) but is not promised to stay the same across DuckDB versions;
    the warehouse records a probe value and recomputes stored keys when it changes.
    """
    joined = ", ".join(args)
    return f"((CAST(hash({joined}) AS UHUGEINT) << 64) | hash({joined}, 'tailor'))"


_PROBE = hash128(["1", "'tailor'", "TIMESTAMP '2000-01-01'"])
HASH_PROBE_SQL = f"SELECT CAST({_PROBE} AS VARCHAR)"

# DuckDB's hash of several values folds them left to right, h' = mix(h) XOR hash(next) with
# mix(h) = ((h XOR h >> 32) * HASH_MULTIPLIER) mod 2^64: so hash(args, 'tailor') follows from
# hash(args) without hashing the arguments a second time.
HASH_MULTIPLIER = 0xD6E8FEB86659FD93


def hash128_of(h: str) -> str:
    """SQL for ``hash128(args)`` from ``h``, an expression (a column, best) holding
    ``hash(args)``: the arguments are hashed once instead of twice.

    The same value only while DuckDB combines hashes as above; :data:`HASH128_OF_HOLDS_SQL`
    says whether it does.
    """
    mixed = (
        f"((xor({h}, {h} >> 32) * CAST({HASH_MULTIPLIER} AS UHUGEINT)) "
        f"& CAST({2**64 - 1} AS UHUGEINT))"
    )
    return f"((CAST({h} AS UHUGEINT) << 64) | xor({mixed}, CAST(hash('tailor') AS UHUGEINT)))"


_SAMPLES = (
    "(1, 'a', TIMESTAMP '2000-01-01', 2.5), (NULL, ' b ', NULL, -0.0), "
    "(-7, NULL, TIMESTAMP '1970-01-01 00:00:01.5', NULL), (9007199254740993, '', NULL, 1e300)"
)
HASH128_OF_HOLDS_SQL = (
    f"SELECT bool_and({hash128(['a', 'b', 'c', 'd'])} = {hash128_of('h')} "
    f"AND {hash128(['b'])} = {hash128_of('hb')}) "
    f"FROM (SELECT *, hash(a, b, c, d) AS h, hash(b) AS hb FROM (VALUES {_SAMPLES}) v(a, b, c, d))"
)
"""One row, one boolean: whether :func:`hash128_of` equals :func:`hash128` in this DuckDB."""


def row_hash_sql(spec: TableSpec, event_ids: bool = True) -> str:
    """SQL for the 64-bit hash of a fact row from which :func:`hash128_of` makes its key: the
    same key as :func:`row_key_sql`. ``event_ids=False`` says every ``event_id`` is NULL."""
    if spec.table == "events":
        content = f"hash({', '.join(quote(c.name) for c in spec.columns if c.name != 'event_id')})"
        if not event_ids:
            return content
        return f"CASE WHEN event_id IS NOT NULL THEN hash(event_id) ELSE {content} END"
    return f"hash({', '.join(quote(k) for k in spec.key)})"


def row_key_sql(spec: TableSpec) -> str:
    """SQL computing a fact row's key from its stored canonical columns.

    An event is identified by its ``event_id`` when the source gave one, otherwise by its
    content; other fact tables by their key columns.
    """
    if spec.table == "events":
        content = [quote(c.name) for c in spec.columns if c.name != "event_id"]
        by_id, by_content = hash128(["event_id"]), hash128(content)
        return f"CASE WHEN event_id IS NOT NULL THEN {by_id} ELSE {by_content} END"
    return hash128([quote(k) for k in spec.key])


def create_table_sql(spec: TableSpec) -> str:
    cols = [f"{quote(c.name)} {SQL_TYPES[c.kind]}" for c in spec.columns]
    if spec.mode == "append":
        cols.append(f"{ROW_KEY} UHUGEINT")
    cols.append(f"{INGEST_ID} BIGINT")
    return f"CREATE TABLE {spec.table} ({', '.join(cols)})"


def _v1() -> list[str]:
    statements = [create_table_sql(spec) for spec in KINDS.values()]
    statements.append(
        "CREATE TABLE ingest_log (ingest_id BIGINT, ingested_at TIMESTAMP, kind VARCHAR, "
        "file VARCHAR, rows_read BIGINT, rows_rejected BIGINT, rows_inserted BIGINT, "
        "rows_updated BIGINT, rows_unchanged BIGINT)"
    )
    return statements


# Each entry takes the schema from version i to i + 1; append, never edit a released one.
MIGRATIONS: list[list[str]] = [_v1()]
SCHEMA_VERSION = len(MIGRATIONS)
