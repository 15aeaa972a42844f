"""Ingest a retailer's files, as they are, into the warehouse.

DuckDB reads each file (CSV, Parquet or JSON lines); Python only writes SQL, so memory stays
bounded whatever the file's size. Two paths share the same column rules:

* the fast path inserts straight from the file, with ``error()`` guards on every value that can
  be wrong (a missing required value, an unreadable number or timestamp, an id that does not fit
  the id domain's type). Clean files, the common case, are read once.
* the careful path, taken when the fast one hits any problem, with ``--skip-invalid``, for
  dimension tables and for CSV files with rows of the wrong width, stages the file, marks each
  row's first fault (source column and value), and then refuses the file with an error naming
  file, column and rows, or loads the good rows and writes the bad ones with reasons to
  ``<file>.rejects.csv``. Should a later row contradict the type DuckDB guessed for a column
  from its sample of the file, the whole call is read again with types taken from every row.

All files of one call are one transaction: an error anywhere leaves the warehouse as it was.
Facts (events, campaign members, offers, redemptions) carry a ``row_key`` (the event_id given,
or the row's content); a row whose key is stored already, or repeats in the file, is not added.
Dimensions (items, customers, campaigns) are upserted: the last row of a key wins.

In a pseudonymized warehouse (see :mod:`tailor.privacy.pseudonym`) both paths replace each
customer id by its pseudonym in the SQL that reads the file, before anything is stored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from tailor.errors import InputError, TailorError
from tailor.privacy import pseudonym
from tailor.privacy.keys import Secret
from tailor.store.parse import (
    FRACTIONAL_TYPES,
    INTEGER_ID_RE,
    as_text,
    base_type,
    can_fail,
    is_integer,
    is_numeric,
    is_temporal,
    kind_of_type,
    literal,
    parse_sql,
    text_sql,
)
from tailor.store.schema import (
    HASH128_OF_HOLDS_SQL,
    INGEST_ID,
    KINDS,
    ROW_KEY,
    SQL_TYPES,
    SYSTEM_COLUMNS,
    Column,
    TableSpec,
    hash128_of,
    quote,
    row_hash_sql,
    row_key_sql,
)
from tailor.store.warehouse import Warehouse

StepProgress = Callable[[str, float], None]
"""Called with a step's description and the fraction of it done."""

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
}
KIND_WORDS = {
    "number": "a number",
    "timestamp": "a timestamp (ISO 8601, epoch seconds or milliseconds; or pass --date-format)",
    "flag": "a yes/no flag",
}
SEP = chr(31)  # joins a fault's column and kind in the staged __bad_column
DELIMITERS = (",", ";", "\t", "|")


@dataclass
class IngestReport:
    """What one file added to the warehouse."""

    kind: str
    file: str
    rows_read: int
    rows_rejected: int
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int
    rejects_file: str | None
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Options:
    mapping: dict[str, str] = field(default_factory=dict)
    optional_mapping: dict[str, str] = field(default_factory=dict)
    date_formats: tuple[str, ...] = ()
    skip_invalid: bool = False
    delimiter: str | None = None
    encoding: str | None = None
    progress: StepProgress | None = None
    # Detect column types from every row, not DuckDB's sample of the first ones.
    full_sample: bool = False
    # Store customer ids as pseudonyms (the connection holds the macro making them).
    pseudonymized: bool = False


class _FastPathFailed(Exception):
    """The fast path met something it does not explain; the careful path will."""


class _SampleTooSmall(Exception):
    """DuckDB typed a column from its sample of a file, and a later row contradicts the type."""


def ingest_files(
    wh: Warehouse,
    kind: str,
    files: Sequence[str | Path],
    mapping: dict[str, str] | None = None,
    *,
    optional_mapping: dict[str, str] | None = None,
    date_formats: Sequence[str] = (),
    skip_invalid: bool = False,
    delimiter: str | None = None,
    encoding: str | None = None,
    progress: StepProgress | None = None,
    pseudonymize: bool = False,
    pseudonym_key: Secret | None = None,
) -> list[IngestReport]:
    """Load ``files`` of one ``kind`` into the warehouse, all or nothing.

    Parameters
    ----------
    kind : str
        One of :data:`tailor.store.schema.KINDS` (events, items, customers, campaigns,
        campaign-members, offers, redemptions).
    mapping : dict
        Source column -> target column; each source must exist in every file.
    optional_mapping : dict
        Like ``mapping`` (and overridden by it), but a source absent from a file is ignored:
        the mappings of ``tailor.toml``.
    date_formats : sequence of str
        strptime formats of the timestamp columns; when given, only these formats are accepted.
    skip_invalid : bool
        Load the valid rows and write the others, with reasons, to ``<file>.rejects.csv``.
    pseudonymize : bool
        Store customer ids as pseudonyms, and mark the warehouse so that every later ingest does
        too (see :mod:`tailor.privacy.pseudonym`); a pseudonymized warehouse is ingested into
        so anyway.
    pseudonym_key : Secret, optional
        The pseudonym key (default: the configured one; read only when needed).
    """
    if kind not in KINDS:
        raise TailorError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if not files:
        raise TailorError("no files to ingest")
    spec = KINDS[kind]
    secret = pseudonym.ingest_secret(wh, pseudonymize, pseudonym_key)
    options = _Options(
        mapping=dict(mapping or {}),
        optional_mapping=dict(optional_mapping or {}),
        date_formats=tuple(date_formats),
        skip_invalid=skip_invalid,
        delimiter=delimiter,
        encoding=encoding,
        progress=progress,
        pseudonymized=secret is not None,
    )

    def attempt(fast: bool, options: _Options = options) -> list[IngestReport]:
        with wh.transaction():
            if secret is not None:  # rolled back with the rest when the attempt fails
                pseudonym.mark_pseudonymized(wh, secret)
                pseudonym.create_macro(wh.con, secret)
            first_id = wh.next_ingest_id()
            reports = [
                _FileIngest(wh, spec, Path(f), options, first_id + i).run(fast)
                for i, f in enumerate(files)
            ]
            if secret is not None:
                pseudonym.drop_macro(wh.con)
            return reports

    if spec.mode == "append" and not skip_invalid:
        # Row order in a fact table means nothing; letting DuckDB write in any order makes
        # large loads much cheaper to checkpoint. (The careful path numbers staged rows by
        # their order, so it keeps the default.)
        wh.con.execute("SET preserve_insertion_order = false")
        try:
            return attempt(fast=True)
        except _FastPathFailed:
            pass  # rolled back; the careful path says exactly what is wrong
        finally:
            wh.con.execute("RESET preserve_insertion_order")
    try:
        return attempt(fast=False)
    except _SampleTooSmall:
        # Rolled back (DuckDB cannot go on in a transaction after a failed cast): read the
        # files again, typing their columns from all rows. Rare, and slower.
        return attempt(fast=False, options=replace(options, full_sample=True))


# trim() removes Unicode space separators only: in ASCII text, the space alone.
TRIM_SPACES_ONLY_SQL = (
    "SELECT bool_and(trim(c || 'a' || c) = c || 'a' || c) "
    "FROM (SELECT chr(CAST(i AS INTEGER)) AS c FROM range(1, 128) t(i) WHERE i <> 32)"
)
_HOLDS: dict[tuple[str, str], bool] = {}


def _holds(con: duckdb.DuckDBPyConnection, probe: str) -> bool:
    """The answer of a one-boolean ``probe`` on how DuckDB behaves, asked once per version:
    whether a shortcut of the fast path gives the same values as the plain SQL."""
    key = (duckdb.__version__, probe)
    if key not in _HOLDS:
        _HOLDS[key] = bool(con.execute(probe).fetchone()[0])
    return _HOLDS[key]


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _may_fail(kind: str, source_type: str) -> bool:
    """Whether reading a present source value of this type as ``kind`` can fail: text can;
    a typed number or timestamp cannot (but an epoch number may be out of range)."""
    if not can_fail(kind):
        return False
    if base_type(source_type) in ("VARCHAR", "JSON"):
        return True
    if kind == "timestamp":
        return not is_temporal(source_type)
    return kind == "flag" and not is_numeric(source_type) and base_type(source_type) != "BOOLEAN"


def _iso(strptime_format: str | None) -> bool:
    """Whether a format the sniffer chose reads exactly what our ISO 8601 parse reads."""
    return strptime_format is None or bool(
        re.fullmatch(r"%Y-%m-%d([ T]%H:%M(:%S(\.%f)?)?)?", strptime_format)
    )


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


@dataclass
class _Target:
    """One column of the target table, fed from one source column of the file."""

    name: str
    source: str
    source_type: str
    column: Column | None  # the canonical column; None for an attribute
    stored_type: str | None  # the type the table stores it as; None for a new attribute

    @property
    def kind(self) -> str | None:
        """How the source is parsed; None keeps a new attribute as DuckDB read it."""
        if self.column is not None:
            return self.column.kind
        if self.stored_type:
            return kind_of_type(self.stored_type)
        # A JSON field of mixed strings and numbers is kept as the text the user wrote.
        return "text" if base_type(self.source_type) == "JSON" else None


class _FileIngest:
    """Ingest of one file, inside the caller's transaction."""

    def __init__(
        self, wh: Warehouse, spec: TableSpec, path: Path, options: _Options, ingest_id: int
    ) -> None:
        self.wh = wh
        self.con = wh.con
        self.spec = spec
        self.path = path
        self.name = str(path)
        self.options = options
        self.ingest_id = ingest_id
        self.format = FORMATS.get(_suffix(path))
        self.row_word = "row" if self.format == "parquet" else "line"
        self.first_row = 2 if self.format == "csv" else 1
        self.targets: list[_Target] = []
        self.delimiter = options.delimiter
        if self.delimiter is None and _suffix(path) == ".tsv":
            self.delimiter = "\t"
        # A CSV file with rows of the wrong width (see _sniff_csv) is read in the careful path,
        # which sets those rows aside and reports them with their lines.
        self.ragged = False
        self.skip: int | None = None  # lines above the header, once decided (see _prepare)
        # Whether DuckDB's sniffer read the CSV file's timestamps as ISO 8601 (no guessing).
        self.iso_sniffed = False

    # -- reading ----------------------------------------------------------------------------------

    def _source(self, types: dict[str, str] | None = None, rejects: bool = False) -> str:
        path = literal(str(self.path))
        if self.format == "parquet":
            return f"read_parquet({path})"
        if self.format == "json":
            sample = ", sample_size = -1" if self.options.full_sample else ""
            return f"read_json({path}, format = 'newline_delimited'{sample})"
        options = self._csv_options()
        if types:
            pairs = ", ".join(f"{literal(k)}: {literal(v)}" for k, v in types.items())
            options.append(f"types = {{{pairs}}}")
        if rejects:
            options.append(
                "store_rejects = true, rejects_table = '__rejects', rejects_scan = '__reject_scans'"
            )
        return f"read_csv({path}, {', '.join(options)})"

    def _csv_options(self) -> list[str]:
        """Options of DuckDB's CSV reader (and sniffer) for this file's dialect."""
        options = ["header = true"]
        if self.delimiter is not None:
            options.append(f"delim = {literal(self.delimiter)}")
        if self.options.encoding is not None:
            options.append(f"encoding = {literal(self.options.encoding)}")
        if self.options.full_sample:
            options.append("sample_size = -1")
        if self.skip is not None:
            options.append(f"skip = {self.skip}")
        return options

    def _input_error(self, exc: duckdb.Error) -> InputError:
        """A DuckDB reader error as an InputError naming the file and line."""
        message = str(exc)
        line = re.search(r"CSV Error on Line: (\d+)", message)
        lines = [s.strip() for s in message.splitlines() if s.strip()]
        reason = lines[0]
        if line:
            detail = [
                s for s in lines[1:] if not s.startswith(("Original Line", "Possible", "file ="))
            ]
            reason = detail[0] if detail else reason
        reason = re.sub(r"^[A-Za-z ]+Error: ", "", reason)
        if "unicode" in reason.lower() or "utf-8" in reason.lower():
            reason += " Pass --encoding (e.g. latin-1) to read it."
        rows = [int(line.group(1))] if line else []
        return InputError(self.name, reason, rows=rows, row_word=self.row_word)

    def _prepare(self) -> None:
        if self.format is None:
            raise InputError(
                self.name,
                f"unknown file type {self.path.suffix!r}; use .csv, .tsv, .parquet or .jsonl",
            )
        if not self.path.is_file():
            raise InputError(self.name, "no such file")
        if self.path.stat().st_size == 0:
            raise InputError(self.name, "the file is empty")
        if self.format != "csv":
            self.sniffed = self._describe(self._source())
            self.targets = self._resolve(self.sniffed)
            return
        self.sniffed, preamble = self._sniff_csv()
        try:
            self.targets = self._resolve(self.sniffed)
        except InputError as error:
            if preamble is None:
                raise
            # The lines DuckDB's sniffer skipped may be no ragged rows but a preamble above the
            # header (a title, say): then read the file as it did, counting lines past them.
            skip, columns = preamble
            try:
                self.targets = self._resolve(columns)
            except InputError:
                raise error from None
            self.sniffed, self.ragged, self.skip = columns, False, skip
            self.first_row += skip

    def _describe(self, source: str) -> dict[str, str]:
        """Column name -> DuckDB type of a source."""
        try:
            described = self.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        except duckdb.Error as exc:
            raise self._input_error(exc) from None
        return {row[0]: row[1] for row in described}

    def _sniff_csv(self) -> tuple[dict[str, str], tuple[int, dict[str, str]] | None]:
        """Column name -> type as DuckDB's sniffer reads a CSV file; marks a ragged file.

        Also returns, when the sniffer skipped lines at the top, (lines skipped, its columns):
        the reading to use if those lines turn out to be a preamble rather than ragged rows.
        """
        options = ", ".join(self._csv_options())
        try:
            sniffed = self.con.execute(
                "SELECT SkipRows, Columns, DateFormat, TimestampFormat "
                f"FROM sniff_csv({literal(str(self.path))}, {options})"
            ).fetchone()
        except duckdb.Error as exc:
            if "parsing dialect" not in str(exc):  # e.g. an encoding error: the user's to fix
                raise self._input_error(exc) from None
            sniffed = None  # no dialect reads every row to the same width
        preamble = None
        if sniffed is not None:
            skip, columns, date_format, timestamp_format = sniffed
            self.iso_sniffed = all(_iso(f) for f in (date_format, timestamp_format))
            # Rows of the wrong width make the sniffer skip the lines before the last of them,
            # or read the whole file as one column (its header then shows the delimiter).
            one_column = (
                len(columns) == 1
                and self.delimiter is None
                and any(d in columns[0]["name"] for d in DELIMITERS)
            )
            by_name = {c["name"]: c["type"] for c in columns}
            if not skip and not one_column:
                return by_name, None
            if skip:
                preamble = skip, by_name
        # Read with the header as line 1, setting aside the rows of the wrong width.
        self.ragged, self.iso_sniffed, self.skip = True, False, 0
        return self._describe(self._source(rejects=True)), preamble

    def _resolve(self, file_columns: dict[str, str]) -> list[_Target]:
        """Decide which file column feeds which table column."""
        spec = self.spec
        by_lower = {c.lower(): c for c in file_columns}

        def find(source: str) -> str | None:
            return source if source in file_columns else by_lower.get(source.lower())

        chosen: dict[str, str] = {}  # target -> source

        def claim(source: str, target: str) -> None:
            if target in chosen:
                raise InputError(
                    self.name,
                    f"both {chosen[target]!r} and {source!r} would become {target!r}; "
                    "map only one of them",
                )
            chosen[target] = source

        # A mapping given for this call overrides tailor.toml's for the same source or target.
        overridden = set(self.options.mapping.values())
        explicit = {
            s: t
            for s, t in self.options.optional_mapping.items()
            if find(s) is not None and t not in overridden
        }
        explicit.update(self.options.mapping)
        for source, target in explicit.items():
            found = find(source)
            if found is None:
                listing = ", ".join(repr(c) for c in file_columns)
                raise InputError(
                    self.name,
                    f"--map {source}={target}: the file has no column {source!r} "
                    f"(its columns: {listing})",
                )
            if target in SYSTEM_COLUMNS:
                raise InputError(self.name, f"--map {source}={target}: {target!r} is reserved")
            claim(found, target)
        used = set(chosen.values())
        for source in file_columns:
            # A file column named as a canonical column maps itself, unless a map took the name.
            if (
                source not in used
                and _normal(source) in spec.names
                and _normal(source) not in chosen
            ):
                chosen[_normal(source)] = source
                used.add(source)

        missing = [c.name for c in spec.columns if c.required and c.name not in chosen]
        if missing:
            listing = ", ".join(repr(c) for c in file_columns)
            reason = (
                f"missing required column {missing[0]!r} for {spec.kind} (the file's columns: "
                f"{listing}); name it so or map one with --map SOURCE={missing[0]}"
            )
            if len(file_columns) == 1 and re.search(r"[,;|\t]", next(iter(file_columns))):
                reason += "; the file reads as a single column: is the delimiter wrong? "
                reason += "(pass --delimiter)"
            raise InputError(self.name, reason)

        stored = self.wh.columns(spec.table)
        targets = [
            _Target(t, s, file_columns[s], spec.column(t), stored.get(t)) for t, s in chosen.items()
        ]
        for source in file_columns:
            if source in used:
                continue
            name = source
            if _normal(source) in spec.names or source in SYSTEM_COLUMNS or source.startswith("__"):
                # A second column of a canonical name (its twin was mapped): keep it, renamed.
                name = "source_" + _normal(source).strip("_")
            targets.append(_Target(name, source, file_columns[source], None, stored.get(name)))
        return targets

    # -- the two paths ----------------------------------------------------------------------------

    def run(self, fast: bool) -> IngestReport:
        start = time.perf_counter()
        self._prepare()
        if fast:
            read, rejected, inserted, updated, rejects_file = self._insert_fast(), 0, None, 0, None
        else:
            read, rejected, inserted, updated, rejects_file = self._insert_careful()
        if inserted is None:
            inserted = self._dedupe()
        report = IngestReport(
            kind=self.spec.kind,
            file=self.name,
            rows_read=read,
            rows_rejected=rejected,
            rows_inserted=inserted,
            rows_updated=updated,
            rows_unchanged=read - rejected - inserted - updated,
            rejects_file=rejects_file,
            seconds=round(time.perf_counter() - start, 3),
        )
        self.con.execute(
            "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.ingest_id,
                datetime.now(),
                report.kind,
                str(self.path.resolve()),
                report.rows_read,
                report.rows_rejected,
                report.rows_inserted,
                report.rows_updated,
                report.rows_unchanged,
            ],
        )
        return report

    def _insert_fast(self) -> int:
        """Insert straight from the file; any doubt raises _FastPathFailed. Returns rows read."""
        if self.ragged:
            raise _FastPathFailed("rows of the wrong width")
        types = {}
        for t in self.targets:
            keep = t.column is not None and (
                (t.kind in ("number", "timestamp") and is_numeric(t.source_type))
                or (
                    t.kind == "timestamp"
                    and is_temporal(t.source_type)
                    and not self.options.date_formats
                    and (self.format != "csv" or self.iso_sniffed)
                )
            )
            if t.column is not None and not keep:
                types[t.source] = "VARCHAR"
        for t in self.targets:
            if self.format == "csv" and t.source in types:
                t.source_type = "VARCHAR"
        id_types = {}
        for t in self.targets:
            if t.column is not None and t.column.domain:
                # Float ids may all be whole (pandas writes integer ids with gaps as floats):
                # tried as integers, the guards below send any fraction to the careful path.
                source_type = base_type(self.sniffed[t.source])
                integral = is_integer(source_type) or source_type in FRACTIONAL_TYPES
                id_types[t.name] = self._decide_id_type(t.column.domain, integral)
        self._decide_derived_ids()
        self._add_attributes(
            {t.name: "VARCHAR" if t.kind == "text" else t.source_type for t in self.targets}
        )
        self.wh.refresh_row_keys()

        inner, guards = [], []
        for t in self.targets:
            value, checks = self._value_sql(t, id_types.get(t.name))
            inner.append(f"{value} AS {quote(t.name)}")
            guards += [
                f"WHEN {c} THEN error({literal(what + ' ' + t.source)})" for c, what in checks
            ]
        # A row with any fault stops the insert (the careful path then says which and where).
        ok = f"coalesce(CASE {' '.join(guards)} END, true)" if guards else "true"
        source = self._source(types if self.format == "csv" else None)
        relation = (
            f"SELECT * EXCLUDE (__ok) FROM (SELECT {', '.join(inner)}, {ok} AS __ok, "
            f"0 AS __row FROM {source}) WHERE __ok"
        )
        stored = self._has_rows()
        sql = self._insert_sql(self._pseudonymized(relation), skip_stored=stored)
        try:
            read = self.wh.run(sql, progress=self._step(f"loading {self.path.name}"))
            if stored:  # the insert counted only the new rows
                read = self.con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        except duckdb.Error as exc:
            raise _FastPathFailed(str(exc)) from exc
        if read == 0:
            # A header without rows is refused (by the careful path), not loaded as nothing.
            raise _FastPathFailed("no rows")
        return read

    def _insert_careful(self) -> tuple[int, int, int | None, int, str | None]:
        """Stage, check, then merge the valid rows.

        Returns (read, rejected, inserted, updated, rejects file); inserted is None for a fact
        table, whose duplicates are dropped afterwards.
        """
        text_types = {t.source: "VARCHAR" for t in self.targets if t.column is not None}
        for t in self.targets:
            if self.format == "csv" and t.source in text_types:
                t.source_type = "VARCHAR"
        rejects = self.format == "csv" and (self.options.skip_invalid or self.ragged)
        source = self._source(text_types if self.format == "csv" else None, rejects=rejects)
        self._stage(source)
        try:
            total, bad = self.con.execute(
                "SELECT count(*), count(__bad_column) FROM __staged"
            ).fetchone()
            structural = self._structural_rejects()
            if total == 0 and not structural:
                raise InputError(self.name, "the file has a header but no data rows")
            if (bad or structural) and not self.options.skip_invalid:
                self._raise_first_error(bad, structural)
            rejects_file = self._write_rejects(source, structural) if bad or structural else None
            id_types = {}
            for t in self.targets:
                if t.column is not None and t.column.domain:
                    integral = self.con.execute(
                        f"SELECT bool_and(regexp_full_match({quote(t.name)}, '{INTEGER_ID_RE}')) "
                        f"FROM __staged WHERE __bad_column IS NULL"
                    ).fetchone()[0]
                    id_types[t.name] = self._decide_id_type(t.column.domain, integral is not False)
            staged = dict(
                self.con.execute(
                    "SELECT column_name, data_type FROM duckdb_columns() "
                    "WHERE table_name = '__staged'"
                ).fetchall()
            )
            self._decide_derived_ids()
            self._add_attributes(staged)
            self.wh.refresh_row_keys()
            columns = ", ".join(
                f"CAST({quote(t.name)} AS {id_types[t.name]}) AS {quote(t.name)}"
                if t.name in id_types
                else quote(t.name)
                for t in self.targets
            )
            relation = self._pseudonymized(
                f"SELECT {columns}, rowid AS __row FROM __staged WHERE __bad_column IS NULL"
            )
            if self.spec.mode == "append":
                self.wh.run(
                    self._insert_sql(relation, skip_stored=self._has_rows()),
                    progress=self._step(f"merging {self.path.name}"),
                )
                inserted, updated = None, 0
            else:
                inserted, updated = self._upsert(relation)
        finally:
            for table in ("__staged", "__rejects", "__reject_scans"):
                self.con.execute(f"DROP TABLE IF EXISTS {table}")
        rejected = bad + len(structural)
        return total + len(structural), rejected, inserted, updated, rejects_file

    # -- column rules shared by both paths --------------------------------------------------------

    def _pseudonymized(self, relation: str) -> str:
        """``relation`` with customer ids replaced by their pseudonyms, if the ingest makes
        them."""
        if not self.options.pseudonymized or "customer_id" not in {t.name for t in self.targets}:
            return relation
        return pseudonym.pseudonymized_sql(relation)

    def _decide_id_type(self, domain: str, integral: bool) -> str:
        """The storage type for ids of ``domain`` given whether this file's ids are integers;
        widens the domain to text (for good) when they are not."""
        if domain == "customer" and self.options.pseudonymized:
            integral = False  # pseudonyms are text, whatever the ids they replace
        current = self.wh.id_type(domain)
        if current == "BIGINT" and not integral:
            self.wh.set_id_type(domain, "VARCHAR")
            return "VARCHAR"
        if current == "VARCHAR" and integral and self.wh.id_domain_empty(domain):
            self.wh.set_id_type(domain, "BIGINT")
            return "BIGINT"
        return current

    def _decide_derived_ids(self) -> None:
        if self.spec.table == "events" and "basket_id" not in {t.name for t in self.targets}:
            self.wh.set_id_type("basket", "VARCHAR")  # derived basket ids are text

    def _value_sql(self, t: _Target, id_type: str | None) -> tuple[str, list[tuple[str, str]]]:
        """(SQL value of a target, [(fault condition, fault word)]) for the fast path."""
        src = quote(t.source)
        kind = t.kind
        checks: list[tuple[str, str]] = []
        if kind is None:
            return src, checks
        value = parse_sql(kind, src, t.source_type, self.options.date_formats)
        if (
            kind in ("id", "text")
            and base_type(t.source_type) == "VARCHAR"
            and _holds(self.con, TRIM_SPACES_ONLY_SQL)
        ):
            # trim() costs as much as reading the column, and most values have nothing to trim:
            # ASCII text that neither starts nor ends with a space.
            ascii = f"strlen({src}) = length({src})"
            spaced = f"{src} LIKE ' %' OR {src} LIKE '% ' OR {src} = ''"
            value = f"CASE WHEN {ascii} AND NOT ({spaced}) THEN {src} ELSE {value} END"
        if id_type == "BIGINT":
            if is_integer(t.source_type):
                value = f"CAST({src} AS BIGINT)"
            else:
                # Untrimmed: an id with spaces fails here and is trimmed by the careful path.
                text = f"CAST({src} AS VARCHAR)"
                if base_type(t.source_type) in FRACTIONAL_TYPES:
                    text = text_sql(src, t.source_type)  # 123.0 -> '123'
                checks.append(
                    (f"NOT regexp_full_match({text}, '{INTEGER_ID_RE}')", "non-integer id in")
                )
                value = f"try_cast({text} AS BIGINT)"
        elif t.column is None and t.stored_type not in (None, *SQL_TYPES.values()):
            value = f"try_cast({value} AS {t.stored_type})"
        if _may_fail(kind, t.source_type) or (
            t.column is None and t.stored_type not in (None, t.source_type, "VARCHAR")
        ):
            present = f"nullif(trim(CAST({src} AS VARCHAR)), '') IS NOT NULL"
            checks.append((f"{present} AND ({value}) IS NULL", "unreadable value in"))
        if t.column is not None and t.column.required:
            # Before the other checks: they pass on NULL.
            checks.insert(0, (f"({value}) IS NULL", "missing value in"))
        return value, checks

    def _add_attributes(self, types: dict[str, str]) -> None:
        """Add the file's new attribute columns to the table, typed as read."""
        for t in self.targets:
            if t.column is None and t.stored_type is None:
                self.con.execute(
                    f"ALTER TABLE {self.spec.table} ADD COLUMN {quote(t.name)} {types[t.name]}"
                )

    def _insert_sql(self, relation: str, skip_stored: bool) -> str:
        """INSERT of ``relation`` (target-named columns plus __row) into the fact table.

        With ``skip_stored``, rows whose key the table holds already are not inserted (an
        anti-join: cheaper than writing them and deleting them again).
        """
        table = self.spec.table
        canonical = [c.name for c in self.spec.columns]
        final = canonical + [t.name for t in self.targets if t.name not in canonical]
        names = ", ".join([quote(n) for n in final] + [ROW_KEY, INGEST_ID])
        values = ", ".join(quote(n) for n in final)
        derived = self._derived(relation, final)
        if _holds(self.con, HASH128_OF_HOLDS_SQL):
            # The row's hash once, in its own column; the key follows from it (see hash128_of).
            event_ids = "event_id" in {t.name for t in self.targets}
            hashed = f"SELECT *, {row_hash_sql(self.spec, event_ids)} AS __hash FROM ({derived})"
            keyed = f"SELECT {values}, {hash128_of('__hash')} AS {ROW_KEY} FROM ({hashed})"
        else:
            keyed = f"SELECT {values}, {row_key_sql(self.spec)} AS {ROW_KEY} FROM ({derived})"
        new = (
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{ROW_KEY} = s.{ROW_KEY})"
            if skip_stored
            else ""
        )
        return (
            f"INSERT INTO {table} ({names}) "
            f"SELECT {values}, {ROW_KEY}, {self.ingest_id} FROM ({keyed}) s {new}"
        )

    def _has_rows(self) -> bool:
        return bool(
            self.con.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {self.spec.table} LIMIT 1)"
            ).fetchone()[0]
        )

    def _derived(self, relation: str, final: list[str]) -> str:
        """SELECT over ``relation`` giving every final column: canonical columns absent from the
        file as typed NULLs, and for events the derived event_type, return sign and basket."""
        have = {t.name for t in self.targets}
        stored = self.wh.columns(self.spec.table)

        def col(name: str) -> str:
            if name in have:
                return quote(name)
            return f"CAST(NULL AS {stored[name]})"

        exprs = {n: col(n) for n in final}
        if self.spec.table == "events":
            kind = f"coalesce({col('event_type')}, 'purchase')"
            qty, val = col("quantity"), col("value")
            is_return = (
                f"({kind} = 'return' OR ({kind} = 'purchase' "
                f"AND ({qty} < 0 OR ({qty} IS NULL AND {val} < 0))))"
            )
            exprs["event_type"] = f"CASE WHEN {is_return} THEN 'return' ELSE {kind} END"
            exprs["quantity"] = f"CASE WHEN {is_return} THEN abs({qty}) ELSE {qty} END"
            exprs["value"] = f"CASE WHEN {is_return} THEN abs({val}) ELSE {val} END"
            if "basket_id" not in have:
                # Where the file names no basket, a basket is one customer's events at one moment.
                exprs["basket_id"] = (
                    "CAST(customer_id AS VARCHAR) || '@' || "
                    "strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%f')"
                )
        select = ", ".join(f"{e} AS {quote(n)}" for n, e in exprs.items())
        return f"SELECT {select}, __row FROM ({relation})"

    # -- after the insert -------------------------------------------------------------------------

    def _dedupe(self) -> int:
        """Drop repeats among this ingest's rows (stored keys were skipped by the insert);
        return the rows kept."""
        table, me = self.spec.table, self.ingest_id
        written = self.con.execute(
            f"SELECT count(*) FROM {table} WHERE {INGEST_ID} = ?", [me]
        ).fetchone()[0]
        # Joined with themselves, the keys give one row per pair of copies: as many rows as were
        # written only if no key repeats. A hash join costs a third less than a GROUP BY (or
        # count(DISTINCT ...)) over the keys, and the LIMIT stops it where keys do repeat.
        mine = f"SELECT {ROW_KEY} FROM {table} WHERE {INGEST_ID} = {me}"
        pairs = self.con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM ({mine}) a JOIN ({mine}) b USING ({ROW_KEY}) "
            f"LIMIT {written + 1})"
        ).fetchone()[0]
        if pairs == written:
            return written
        # Only the repeated keys are looked at, and only their extra copies deleted.
        deleted = self.wh.run(
            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM ("
            f"SELECT rowid, row_number() OVER (PARTITION BY {ROW_KEY} ORDER BY rowid) AS copy "
            f"FROM {table} WHERE {INGEST_ID} = {me} AND {ROW_KEY} IN ("
            f"SELECT {ROW_KEY} FROM {table} WHERE {INGEST_ID} = {me} "
            f"GROUP BY {ROW_KEY} HAVING count(*) > 1)) WHERE copy > 1)",
            progress=self._step(f"dropping repeated rows of {self.path.name}"),
        )
        return written - deleted

    def _upsert(self, relation: str) -> tuple[int, int]:
        """Merge a dimension file: the last row of a key wins. Returns (inserted, updated)."""
        spec, table = self.spec, self.spec.table
        key = [quote(k) for k in spec.key]
        final = [t.name for t in self.targets]
        self.con.execute(
            f"CREATE TEMP TABLE __latest AS SELECT * EXCLUDE (__row) FROM ({relation}) "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY __row DESC) = 1"
        )
        try:
            on = " AND ".join(f"{table}.{k} = s.{k}" for k in key)
            attrs = [quote(n) for n in final if quote(n) not in key]
            updated = 0
            if attrs:
                changed = " OR ".join(f"{table}.{n} IS DISTINCT FROM s.{n}" for n in attrs)
                sets = ", ".join(f"{n} = s.{n}" for n in attrs)
                updated = self.wh.run(
                    f"UPDATE {table} SET {sets}, {INGEST_ID} = {self.ingest_id} "
                    f"FROM __latest s WHERE {on} AND ({changed})"
                )
            same_key = " AND ".join(f"t.{k} = s.{k}" for k in key)
            names = ", ".join(quote(n) for n in final)
            inserted = self.wh.run(
                f"INSERT INTO {table} ({names}, {INGEST_ID}) "
                f"SELECT {names}, {self.ingest_id} FROM __latest s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same_key})"
            )
        finally:
            self.con.execute("DROP TABLE IF EXISTS __latest")
        return inserted, updated

    # -- the careful path's staging and reporting -------------------------------------------------

    def _stage(self, source: str) -> None:
        """Read the file into ``__staged``: parsed columns plus the first fault of each row."""
        inner, faults = [], []
        for i, t in enumerate(self.targets):
            kind = t.kind
            raw = f"__raw_{i}"
            if kind is None:
                inner.append(f"{quote(t.source)} AS {quote(t.name)}")
                continue
            value = parse_sql(kind, quote(t.source), t.source_type, self.options.date_formats)
            if t.column is None and t.stored_type not in (None, *SQL_TYPES.values()):
                value = f"try_cast({value} AS {t.stored_type})"
            inner.append(f"{value} AS {quote(t.name)}")
            if _may_fail(kind, t.source_type):
                inner.append(f"{as_text(quote(t.source), t.source_type)[0]} AS {raw}")
                present = f"nullif(trim(CAST({raw} AS VARCHAR)), '') IS NOT NULL"
                faults.append((f"{present} AND {quote(t.name)} IS NULL", t, raw))
        for t in self.targets:
            if t.column is not None and t.column.required:
                faults.append((f"{quote(t.name)} IS NULL", t, None))
        # Unreadable values first, so that one is not reported as the missing value it parses to.
        bad_column = " ".join(
            f"WHEN {cond} THEN {literal(t.source + SEP + ('parse' if raw else 'missing'))}"
            for cond, t, raw in faults
        )
        bad_value = " ".join(
            f"WHEN {cond} THEN CAST({raw} AS VARCHAR)" for cond, t, raw in faults if raw
        )
        keep = ", ".join(quote(t.name) for t in self.targets)
        sql = (
            f"CREATE TEMP TABLE __staged AS SELECT {keep}, "
            f"CASE {bad_column or 'WHEN false THEN NULL'} END AS __bad_column, "
            f"CASE {bad_value or 'WHEN false THEN NULL'} END AS __bad_value "
            f"FROM (SELECT {', '.join(inner)} FROM {source})"
        )
        try:
            self.wh.run(sql, progress=self._step(f"reading {self.path.name}"))
        except duckdb.Error as exc:
            sampled = isinstance(exc, duckdb.ConversionException) or "sample_size" in str(exc)
            if sampled and not self.options.full_sample:
                raise _SampleTooSmall(str(exc)) from exc
            raise self._input_error(exc) from None

    def _step(self, description: str) -> Callable[[float], None] | None:
        report = self.options.progress
        if report is None:
            return None
        return lambda fraction: report(description, fraction)

    def _structural_rejects(self) -> list[tuple[int, str, str]]:
        """Lines DuckDB's CSV reader skipped (``skip_invalid`` only): (line, reason, text)."""
        exists = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = '__rejects'"
        ).fetchone()[0]
        if not exists:
            return []
        return self.con.execute(
            "SELECT line, min(error_message), min(csv_line) "
            "FROM __rejects GROUP BY line ORDER BY line"
        ).fetchall()

    def _lines(self, rowids: np.ndarray, skipped: Sequence[int] = ()) -> np.ndarray:
        """Staged row ids -> row numbers as the user counts them in the file."""
        # Rows written inside a transaction get row ids from a large base: count from the first.
        base = self.con.execute("SELECT min(rowid) FROM __staged").fetchone()[0]
        lines = np.asarray(rowids, dtype=np.int64) - base + self.first_row
        for line in sorted(skipped):  # lines the reader dropped shift the later ones
            lines += lines >= line
        return lines

    def _raise_first_error(self, bad: int, structural: list[tuple[int, str, str]]) -> None:
        if structural:  # the file's shape first: later line numbers depend on it
            line, reason, _ = structural[0]
            raise InputError(self.name, reason, rows=[line], row_word=self.row_word)
        first = self.con.execute(
            "SELECT __bad_column, __bad_value FROM __staged WHERE __bad_column IS NOT NULL "
            "ORDER BY rowid LIMIT 1"
        ).fetchone()
        rowids = self.con.execute(
            "SELECT rowid FROM __staged WHERE __bad_column = ? ORDER BY rowid LIMIT 5", [first[0]]
        ).fetchnumpy()["rowid"]
        source, what = first[0].split(SEP)
        raise InputError(
            self.name,
            self._reason(what, first[1], source),
            column=source,
            rows=self._lines(rowids).tolist(),
            n_bad=bad,
            row_word=self.row_word,
        )

    def _reason(self, what: str, value: str | None, source: str) -> str:
        target = next(t for t in self.targets if t.source == source)
        if what == "missing":
            return f"missing value for required column {target.name!r}"
        if target.kind == "timestamp" and self.options.date_formats:
            formats = " or ".join(self.options.date_formats)
            return f"cannot read {value!r} as a timestamp in format {formats}"
        return f"cannot read {value!r} as {KIND_WORDS.get(target.kind, target.kind)}"

    def _write_rejects(self, source: str, structural: list[tuple[int, str, str]]) -> str:
        """Write rejected rows, with line, column and reason, to ``<file>.rejects.csv``."""
        out = self.path.with_name(self.path.name + ".rejects.csv")
        bad = self.con.execute(
            "SELECT rowid, __bad_column, __bad_value FROM __staged "
            "WHERE __bad_column IS NOT NULL ORDER BY rowid"
        ).df()
        skipped = [s[0] for s in structural]
        frames = []
        if len(bad):
            # The original record of each bad row, from a second read of the same source (only
            # files with rejects pay for it). Both reads number rows from their own base.
            self.con.execute(f"CREATE TEMP TABLE __raw AS SELECT * FROM {source}")
            try:
                self.con.register("__bad_rows", bad[["rowid"]])
                records = self.con.execute(
                    "SELECT r.rowid - (SELECT min(rowid) FROM __raw) "
                    "+ (SELECT min(rowid) FROM __staged) AS rowid, "
                    "CAST(to_json(r) AS VARCHAR) AS record FROM __raw r "
                    "WHERE r.rowid - (SELECT min(rowid) FROM __raw) "
                    "+ (SELECT min(rowid) FROM __staged) IN (SELECT rowid FROM __bad_rows)"
                ).df()
                self.con.unregister("__bad_rows")
            finally:
                self.con.execute("DROP TABLE IF EXISTS __raw")
            bad = bad.merge(records, on="rowid", how="left")
            parts = bad["__bad_column"].str.split(SEP, expand=True)
            frames.append(
                pd.DataFrame(
                    {
                        self.row_word: self._lines(bad["rowid"].to_numpy(), skipped),
                        "column": parts[0],
                        "reason": [
                            self._reason(w, v, c)
                            for c, w, v in zip(parts[0], parts[1], bad["__bad_value"], strict=True)
                        ],
                        "record": bad["record"],
                    }
                )
            )
        if structural:
            frames.append(
                pd.DataFrame(
                    {
                        self.row_word: skipped,
                        "column": None,
                        "reason": [s[1] for s in structural],
                        "record": [s[2] for s in structural],
                    }
                )
            )
        table = pd.concat(frames).sort_values(self.row_word)
        try:
            table.to_csv(out, index=False)
        except OSError as exc:
            raise InputError(self.name, f"cannot write the rejects file {out}: {exc}") from None
        return str(out)
