"""Open the warehouse file, migrate it to the current schema, and answer questions about it."""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from tailor.errors import WarehouseError
from tailor.store.parse import literal
from tailor.store.schema import (
    HASH_PROBE_SQL,
    KINDS,
    MIGRATIONS,
    ROW_KEY,
    SCHEMA_VERSION,
    domains,
    quote,
    row_key_sql,
)

Progress = Callable[[float], None]
"""Called with the fraction done (0..1) of a long step."""

ENCRYPTED_ALIAS = "warehouse"
"""The catalog name of an encrypted warehouse (attached to an in-memory connection)."""


def load_crypto(con: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's crypto module (part of its httpfs extension): without it DuckDB reads
    encrypted files but refuses to write them. The extension comes from the PyPI package
    ``duckdb-extension-httpfs``, built for one DuckDB version (pyproject.toml pins the pair), and
    is loaded from its file: nothing is downloaded."""
    try:
        import duckdb_extension_httpfs
    except ModuleNotFoundError:
        raise WarehouseError(
            "an encrypted warehouse needs DuckDB's httpfs extension: "
            f"pip install duckdb-extension-httpfs=={duckdb.__version__}"
        ) from None
    folder = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    found = sorted(folder.rglob("*.duckdb_extension"))
    if not found:
        raise WarehouseError(f"{folder}: no DuckDB extension file in the httpfs package")
    try:
        con.execute(f"LOAD {literal(str(found[0]))}")
    except duckdb.Error as exc:
        version = duckdb.__version__
        raise WarehouseError(
            f"DuckDB's httpfs extension does not load ({exc}); it must be the build for DuckDB "
            f"{version}: pip install duckdb-extension-httpfs=={version}"
        ) from None


class Warehouse:
    """A connection to the warehouse: an embedded DuckDB database file.

    Parameters
    ----------
    path : str or Path
        The database file; ``":memory:"`` for a throw-away warehouse.
    create : bool
        Create the file when it does not exist (otherwise a missing file is an error).
    read_only : bool
        Open without the write lock, so that several readers may share the file.
    memory_limit : str, optional
        DuckDB's memory limit, e.g. ``"4GB"``; past it DuckDB spills to disk.
    encryption_key : str, optional
        The warehouse's encryption key (see :mod:`tailor.privacy.keys`): the file is a DuckDB
        database encrypted with AES-GCM (its spill files too). An encrypted file does not open
        without it, nor a plain one with it.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        read_only: bool = False,
        memory_limit: str | None = None,
        encryption_key: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.memory_limit = memory_limit
        self._stale_row_keys: set[str] = set()  # see set_id_type
        in_memory = str(path) == ":memory:"
        if not in_memory and not self.path.exists() and (read_only or not create):
            raise WarehouseError(
                f"{self.path}: no warehouse here; load data with `tailor ingest` or `tailor demo`"
            )
        self._encryption_key = None if in_memory else encryption_key
        try:
            if self._encryption_key is None:
                self.con = duckdb.connect(str(path), read_only=read_only)
            else:
                self.con = self._connect_encrypted(read_only)
        except duckdb.Error as exc:
            raise self._open_error(exc) from None
        if memory_limit is not None:
            try:
                self.con.execute(f"SET memory_limit = '{memory_limit}'")
            except duckdb.Error:
                self.con.close()
                raise WarehouseError(
                    f"memory_limit {memory_limit!r}: not a size DuckDB understands (e.g. '4GB')"
                ) from None
        # Progress is polled by Tailor's own bar (see Warehouse.run), never printed by DuckDB.
        self.con.execute("SET enable_progress_bar = true")
        self.con.execute("SET enable_progress_bar_print = false")
        self.con.execute("SET progress_bar_time = 0")
        if not read_only:
            self._migrate()
        self._check_version()
        if not read_only:
            self._check_hash()

    # -- encryption ---------------------------------------------------------------------------

    @property
    def encrypted(self) -> bool:
        return self._encryption_key is not None

    def _connect_encrypted(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """An in-memory connection with the encrypted file attached and in use, so that
        unqualified SQL reads and writes the warehouse, as with a plain file."""
        con = duckdb.connect()
        try:
            load_crypto(con)
            # Where DuckDB spills beyond memory_limit: beside the file, as for a plain file
            # (an in-memory database would spill to ./.tmp), and encrypted.
            con.execute(f"SET temp_directory = {literal(str(self.path) + '.tmp')}")
            con.execute("SET temp_file_encryption = true")
            con.execute(self._attach_sql(self.path, ENCRYPTED_ALIAS, read_only=read_only))
            con.execute(f"USE {ENCRYPTED_ALIAS}")
        except BaseException:
            con.close()
            raise
        return con

    def _attach_sql(
        self, path: Path, alias: str, read_only: bool = False, key: str | None | bool = True
    ) -> str:
        """``ATTACH`` of a database file, encrypted with ``key`` (True: this warehouse's key)."""
        key = self._encryption_key if key is True else key
        options = [f"ENCRYPTION_KEY {literal(key)}"] if key else []
        # Explicitly: a read-only connection attaches read-only by default.
        options.append("READ_ONLY" if read_only else "READ_WRITE")
        attach = f"ATTACH {literal(str(path))} AS {alias}"
        return f"{attach} ({', '.join(options)})"

    def _open_error(
        self, exc: duckdb.Error, path: Path | None = None, key: str | None = None
    ) -> WarehouseError:
        """A WarehouseError saying why ``path`` (default: the warehouse, opened with ``key``,
        default: its key) did not open."""
        path = self.path if path is None else path
        key = self._encryption_key if key is None else key
        message = str(exc)
        if key:  # never echo a key, whatever DuckDB's message holds
            message = message.replace(key, "***")
        if "encrypted database" in message and "without a key" in message:
            return WarehouseError(
                f"{path}: the warehouse is encrypted; set TAILOR_ENCRYPTION_KEY (or "
                "TAILOR_ENCRYPTION_KEY_FILE, or [privacy] encryption_key_file in tailor.toml) "
                "to its key"
            )
        if "Wrong encryption key" in message:
            return WarehouseError(f"{path}: the encryption key set is not this warehouse's key")
        if "is not encrypted" in message:
            return WarehouseError(
                f"{path}: the warehouse is not encrypted, but an encryption key is set; "
                "encrypt it with `tailor encrypt`, or unset the key"
            )
        if isinstance(exc, duckdb.IOException):
            return WarehouseError(f"{path}: cannot open the warehouse: {message}")
        return WarehouseError(f"{path}: not a DuckDB warehouse: {message}")

    def copy_to(self, target: Path, encryption_key: str | None | bool = True) -> None:
        """Copy the whole warehouse into a new database file ``target``, encrypted with
        ``encryption_key`` (True, the default: encrypted as this one is; None: plain). A
        read-only warehouse can be copied too."""
        key = self._encryption_key if encryption_key is True else encryption_key
        if key:
            load_crypto(self.con)
        name = self.con.execute("SELECT current_database()").fetchone()[0]
        self.con.execute("CHECKPOINT")
        try:
            self.con.execute(self._attach_sql(target, "__copy", key=key))
        except duckdb.Error as exc:
            raise self._open_error(exc, target, key) from None
        try:
            self.con.execute(f"COPY FROM DATABASE {quote(name)} TO __copy")
        finally:
            self.con.execute("DETACH __copy")

    # -- schema -------------------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        """Whether the warehouse holds a table ``name`` (tables made on first use, such as the
        privacy ledger, may not exist yet; a read-only warehouse cannot make them)."""
        return (
            self.con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                "AND table_schema = 'main' AND table_catalog = current_database()",
                [name],
            ).fetchone()[0]
            > 0
        )

    def _stored_version(self) -> int:
        if not self.has_table("tailor_meta"):
            return 0
        row = self.con.execute(
            "SELECT value FROM tailor_meta WHERE key = 'schema_version'"
        ).fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        version = self._stored_version()
        if version >= SCHEMA_VERSION:
            return
        with self.transaction():
            if version == 0:
                self.con.execute(
                    "CREATE TABLE tailor_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"
                )
                self.con.execute(
                    "INSERT INTO tailor_meta VALUES ('created_at', ?)", [datetime.now().isoformat()]
                )
            for statements in MIGRATIONS[version:]:
                for sql in statements:
                    self.con.execute(sql)
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def _check_version(self) -> None:
        version = self._stored_version()
        if version > SCHEMA_VERSION:
            raise WarehouseError(
                f"{self.path}: schema version {version} was written by a newer Tailor "
                f"(this one knows up to {SCHEMA_VERSION}); upgrade Tailor"
            )
        if version < SCHEMA_VERSION:
            raise WarehouseError(
                f"{self.path}: schema version {version} needs migrating; open it once for writing"
            )

    def _check_hash(self) -> None:
        """Recompute stored row keys if this DuckDB hashes differently from the one that wrote
        them (keys must stay comparable for re-ingested files to be recognised)."""
        probe = self.con.execute(HASH_PROBE_SQL).fetchone()[0]
        stored = self.get_meta("hash_probe")
        if stored == probe:
            return
        with self.transaction():
            if stored is not None:
                for spec in KINDS.values():
                    if spec.mode == "append":
                        self.recompute_row_keys(spec.table)
            self.set_meta("hash_probe", probe)

    def recompute_row_keys(self, table: str) -> None:
        spec = next(s for s in KINDS.values() if s.table == table)
        self.con.execute(f"UPDATE {table} SET {ROW_KEY} = {row_key_sql(spec)}")

    # -- id domains -------------------------------------------------------------------------

    def id_type(self, domain: str) -> str:
        """Storage type of an id domain: 'BIGINT' or 'VARCHAR' (see Column.domain)."""
        table, column = domains()[domain][0]
        return self.columns(table)[column]

    def typed_id(self, domain: str, value: Any) -> int | str | None:
        """``value`` as the domain stores its ids (12 for "12" in a BIGINT domain), for a look-up;
        None when it cannot be one of them (text in a BIGINT domain)."""
        text = str(value).strip()
        if self.id_type(domain) != "BIGINT":
            return text
        try:
            return int(text)
        except ValueError:
            return None

    def id_domain_empty(self, domain: str) -> bool:
        """True while no table holds an id of this domain, so its type is still open."""
        return all(
            self.con.execute(f"SELECT count({quote(c)}) FROM {t}").fetchone()[0] == 0
            for t, c in domains()[domain]
        )

    def set_id_type(self, domain: str, sql_type: str) -> None:
        """Store every column of an id domain as ``sql_type``; the fact tables touched need their
        row keys recomputed with :meth:`refresh_row_keys` (the transaction's end does it too)."""
        rekey = set()
        for table, column in domains()[domain]:
            if self.columns(table)[column] != sql_type:
                self.con.execute(
                    f"ALTER TABLE {table} ALTER COLUMN {quote(column)} TYPE {sql_type}"
                )
                rekey.add(table)
        for table in rekey:
            spec = next(s for s in KINDS.values() if s.table == table)
            if spec.mode == "append":
                self._stale_row_keys.add(table)

    def refresh_row_keys(self) -> None:
        """Recompute the row keys of the tables whose id types changed (see set_id_type).

        Call it once the transaction's ALTERs are done, before rows are compared by key: DuckDB
        (1.5) fails the commit of a transaction that alters a table after updating it.
        """
        for table in sorted(self._stale_row_keys):
            self.recompute_row_keys(table)
        self._stale_row_keys.clear()

    def next_ingest_id(self) -> int:
        return self.con.execute(
            "SELECT coalesce(max(ingest_id), 0) + 1 FROM ingest_log"
        ).fetchone()[0]

    def get_meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM tailor_meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO tailor_meta VALUES (?, ?)", [key, value])

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> DuckDB type of a table, in table order."""
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return dict(rows)

    # -- transactions and long queries ---------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: statements inside commit together or roll back together."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            self._stale_row_keys.clear()  # the ALTERs were rolled back too
            raise
        self.refresh_row_keys()
        self.con.execute("COMMIT")

    def run(self, sql: str, params: Any = None, progress: Progress | None = None) -> int:
        """Run one writing statement to its end and return the rows it changed; report DuckDB's
        own progress estimate to ``progress`` while it runs."""
        if progress is None:
            return _changed(self.con.execute(sql, params))
        outcome: list[Any] = []

        def target() -> None:
            try:
                outcome.append(_changed(self.con.execute(sql, params)))
            except BaseException as exc:  # re-raised in the calling thread below
                outcome.append(exc)

        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            fraction = self.con.query_progress()
            if fraction >= 0:
                progress(min(fraction, 100.0) / 100.0)
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        progress(1.0)
        return outcome[0]

    # -- what is in it ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts of what the warehouse holds: the ``tailor stats`` figures."""
        c = self.con
        customers = c.execute(
            "SELECT count(*) FROM (SELECT customer_id FROM customers "
            "UNION SELECT customer_id FROM events)"
        ).fetchone()[0]
        items = c.execute(
            "SELECT count(*) FROM (SELECT item_id FROM items UNION SELECT item_id FROM events)"
        ).fetchone()[0]
        n_events, baskets, first, last = c.execute(
            # A basket is one customer's: shops may number baskets per customer.
            "SELECT count(*), count(DISTINCT (customer_id, basket_id)), min(timestamp), "
            "max(timestamp) FROM events"
        ).fetchone()
        by_type = dict(
            c.execute(
                "SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
        )
        tables = {
            spec.table: c.execute(f"SELECT count(*) FROM {spec.table}").fetchone()[0]
            for spec in KINDS.values()
        }
        return {
            "customers": customers,
            "items": items,
            "events": n_events,
            "baskets": baskets,
            "first_event": first.isoformat() if first else None,
            "last_event": last.isoformat() if last else None,
            "event_types": by_type,
            "tables": tables,
            "schema_version": SCHEMA_VERSION,
        }

    def table_digest(self, table: str) -> tuple[int, int]:
        """(row count, order-free hash of all rows): equal digests mean equal contents."""
        cols = ", ".join(quote(c) for c in self.columns(table))
        row = self.con.execute(
            f"SELECT count(*), coalesce(bit_xor(hash(({cols}))), 0) FROM {table}"
        ).fetchone()
        return int(row[0]), int(row[1])

    def rewrite(self) -> None:
        """Copy the warehouse into a fresh file that replaces this one, and reopen it.

        DuckDB leaves deleted values in the file's freed blocks until they are reused; erasure
        needs them gone from the disk. Afterwards ``con`` is a new connection: cursors of the
        old one are closed.
        """
        fresh = self.path.with_name(self.path.name + ".rewrite")
        fresh.unlink(missing_ok=True)
        self.copy_to(fresh)  # encrypted as this one is
        self.con.close()
        os.replace(fresh, self.path)
        self.con = Warehouse(
            self.path, memory_limit=self.memory_limit, encryption_key=self._encryption_key
        ).con

    def cursor(self) -> Warehouse:
        """The warehouse on a cursor of its own (DuckDB connections are not safe to share
        between threads; cursors of one connection are). Closing it closes the cursor only.
        Use this, not ``con.cursor()``: a cursor of an encrypted warehouse's connection starts
        in the in-memory catalog, not the warehouse's."""
        view = copy.copy(self)
        view.con = self.con.cursor()
        if self.encrypted:
            view.con.execute(f"USE {ENCRYPTED_ALIAS}")
        return view

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _changed(result: duckdb.DuckDBPyConnection) -> int:
    """Rows changed by an INSERT/UPDATE/DELETE (0 for statements that report none)."""
    try:
        row = result.fetchone()
    except duckdb.InvalidInputException:  # no result set (DDL)
        return 0
    return int(row[0]) if row and isinstance(row[0], int) else 0
