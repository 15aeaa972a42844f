"""Ingest a retailer's files, as they are, into the warehouse.

DuckDB reads the file (CSV, Parquet or JSON lines) straight into a staging table; Python only
builds SQL, so memory stays bounded whatever the file's size. Each canonical column is parsed in
SQL with ``try_cast``-style functions, and a row that fails is marked with the source column and
value at fault instead of stopping the read. Then either the whole ingest is refused with an
error naming file, column and rows, or (``skip_invalid``) the good rows are merged and the bad
ones written to a rejects file beside the input.

All files of one call are one transaction: an error anywhere leaves the warehouse as it was.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np

from tailor.errors import InputError, TailorError
from tailor.store.schema import KINDS, SQL_TYPES, Column, TableSpec, quote
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
TRUE_WORDS = ("1", "true", "t", "yes", "y")
FALSE_WORDS = ("0", "false", "f", "no", "n")
# Epoch numbers below 1e11 are seconds (up to the year 5138); up to 1e14, milliseconds.
EPOCH_SECONDS_MAX = 1e11
EPOCH_MILLIS_MAX = 1e14
KIND_WORDS = {
    "number": "a number",
    "timestamp": "a timestamp (ISO 8601, epoch seconds or milliseconds; or pass --date-format)",
    "flag": "a yes/no flag",
}


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
    """
    if kind not in KINDS:
        raise TailorError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if not files:
        raise TailorError("no files to ingest")
    spec = KINDS[kind]
    reports = []
    with wh.transaction():
        for file in files:
            reader = _FileIngest(
                wh,
                spec,
                Path(file),
                mapping=mapping or {},
                optional_mapping=optional_mapping or {},
                date_formats=tuple(date_formats),
                skip_invalid=skip_invalid,
                delimiter=delimiter,
                encoding=encoding,
                progress=progress,
            )
            reports.append(reader.run())
    return reports


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _is_numeric(sql_type: str) -> bool:
    base = sql_type.split("(")[0].upper()
    return base in {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL",
    }  # fmt: skip


def _is_fractional(sql_type: str) -> bool:
    return sql_type.split("(")[0].upper() in {"FLOAT", "DOUBLE", "DECIMAL", "REAL"}


def _epoch_sql(x: str) -> str:
    return (
        f"CASE WHEN abs({x}) < {EPOCH_SECONDS_MAX:.0f} "
        f"THEN make_timestamp(CAST(round({x} * 1e6) AS BIGINT)) "
        f"WHEN abs({x}) < {EPOCH_MILLIS_MAX:.0f} "
        f"THEN make_timestamp(CAST(round({x} * 1e3) AS BIGINT)) END"
    )


def parse_sql(kind: str, src: str, src_type: str, date_formats: Sequence[str] = ()) -> str:
    """SQL that turns source expression ``src`` (of DuckDB type ``src_type``) into a value of a
    canonical column kind, NULL where it cannot be read."""
    text = src_type.upper() == "VARCHAR"
    trimmed = f"nullif(trim({src}), '')"
    if kind in ("id", "text", "event_type"):
        if text:
            value = trimmed
        elif _is_fractional(src_type):
            # 123.0 from a float column is the id "123", as it would be from an integer column.
            value = (
                f"CASE WHEN {src} = trunc({src}) THEN CAST(CAST({src} AS HUGEINT) AS VARCHAR) "
                f"ELSE CAST({src} AS VARCHAR) END"
            )
        else:
            value = f"CAST({src} AS VARCHAR)"
        return f"lower({value})" if kind == "event_type" else value
    if kind == "number":
        if text:
            return f"try_cast({trimmed} AS DOUBLE)"
        return f"try_cast({src} AS DOUBLE)"
    if kind == "flag":
        if src_type.upper() == "BOOLEAN":
            return src
        if _is_numeric(src_type):
            return f"({src} <> 0)"
        low = f"lower(trim(CAST({src} AS VARCHAR)))"
        trues = ", ".join(_literal(w) for w in TRUE_WORDS)
        falses = ", ".join(_literal(w) for w in FALSE_WORDS)
        return f"CASE WHEN {low} IN ({trues}) THEN true WHEN {low} IN ({falses}) THEN false END"
    if kind == "timestamp":
        upper = src_type.upper()
        if upper in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
            return f"timezone('UTC', {src})"
        if upper.startswith("TIMESTAMP") or upper == "DATE":
            return f"CAST({src} AS TIMESTAMP)"
        if _is_numeric(src_type):
            return _epoch_sql(f"CAST({src} AS DOUBLE)")
        t = trimmed if text else f"nullif(trim(CAST({src} AS VARCHAR)), '')"
        if date_formats:
            formats = "[" + ", ".join(_literal(f) for f in date_formats) + "]"
            parsed = f"try_strptime({t}, {formats})"
            if any("%z" in f or "%Z" in f for f in date_formats):
                parsed = f"timezone('UTC', {parsed})"
            return parsed
        return (
            f"CASE WHEN regexp_full_match({t}, '[+-]?[0-9]+(\\.[0-9]*)?') "
            f"THEN {_epoch_sql(f'CAST({t} AS DOUBLE)')} "
            f"WHEN regexp_matches({t}, '[0-9]:[0-9]{{2}}(:[0-9]{{2}}(\\.[0-9]+)?)?\\s*"
            f"(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
            f"THEN timezone('UTC', try_cast({t} AS TIMESTAMPTZ)) "
            f"ELSE try_cast({t} AS TIMESTAMP) END"
        )
    raise ValueError(f"unknown column kind {kind!r}")


def _can_fail(kind: str) -> bool:
    return kind in ("number", "timestamp", "flag")


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


@dataclass
class _Target:
    """One column of the target table, fed from one source column of the file."""

    name: str
    source: str
    source_type: str
    column: Column | None  # the canonical column, None for an attribute
    sql_type: str  # the type it is stored as


class _FileIngest:
    """Ingest of one file (inside the caller's transaction)."""

    def __init__(
        self,
        wh: Warehouse,
        spec: TableSpec,
        path: Path,
        *,
        mapping: dict[str, str],
        optional_mapping: dict[str, str],
        date_formats: tuple[str, ...],
        skip_invalid: bool,
        delimiter: str | None,
        encoding: str | None,
        progress: StepProgress | None,
    ) -> None:
        self.wh = wh
        self.con = wh.con
        self.spec = spec
        self.path = path
        self.name = str(path)
        self.mapping = mapping
        self.optional_mapping = optional_mapping
        self.date_formats = date_formats
        self.skip_invalid = skip_invalid
        self.delimiter = delimiter
        self.encoding = encoding
        self.progress = progress
        self.format = FORMATS.get(_suffix(path))
        self.row_word = "row" if self.format == "parquet" else "line"
        self.first_row = {"csv": 2, "json": 1, "parquet": 1}.get(self.format or "", 1)

    # -- reading --------------------------------------------------------------------------------

    def _source(self, types: dict[str, str] | None = None) -> str:
        path = _literal(str(self.path))
        if self.format == "parquet":
            return f"read_parquet({path})"
        if self.format == "json":
            options = ", ignore_errors = true" if self.skip_invalid else ""
            return f"read_json({path}, format = 'newline_delimited'{options})"
        options = ["header = true"]
        if self.delimiter is not None:
            options.append(f"delim = {_literal(self.delimiter)}")
        elif _suffix(self.path) == ".tsv":
            options.append("delim = '\\t'")
        if self.encoding is not None:
            options.append(f"encoding = {_literal(self.encoding)}")
        if types:
            pairs = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in types.items())
            options.append(f"types = {{{pairs}}}")
        if self.skip_invalid:
            options.append(
                "store_rejects = true, rejects_table = '__rejects', rejects_scan = '__reject_scans'"
            )
        return f"read_csv({path}, {', '.join(options)})"

    def _duckdb_error(self, exc: duckdb.Error) -> InputError:
        message = str(exc)
        line = re.search(r"CSV Error on Line: (\d+)", message)
        rows = [int(line.group(1))] if line else []
        detail = [
            s.strip()
            for s in message.splitlines()[1:]
            if s.strip() and not s.startswith(("Original Line", "Possible", "  "))
        ]
        reason = detail[0] if detail and line else message.splitlines()[0]
        reason = re.sub(r"^[A-Za-z ]+Error: ", "", reason)
        if "unicode" in reason.lower() or "utf-8" in reason.lower():
            reason += " Pass --encoding (e.g. latin-1) to read it."
        return InputError(self.name, reason, rows=rows, row_word=self.row_word)

    def _describe(self) -> dict[str, str]:
        try:
            rows = self.con.execute(f"DESCRIBE SELECT * FROM {self._source()}").fetchall()
        except duckdb.Error as exc:
            raise self._duckdb_error(exc) from None
        return {r[0]: r[1] for r in rows}

    # -- columns ----------------------------------------------------------------------------------

    def _resolve(self, file_columns: dict[str, str]) -> list[_Target]:
        """Decide which file column feeds which table column."""
        spec = self.spec
        by_lower = {c.lower(): c for c in file_columns}

        def find(source: str) -> str | None:
            return source if source in file_columns else by_lower.get(source.lower())

        chosen: dict[str, str] = {}  # target -> source
        used: set[str] = set()

        def claim(source: str, target: str, how: str) -> None:
            if target in chosen:
                raise InputError(
                    self.name,
                    f"both {chosen[target]!r} and {source!r} would become {target!r} ({how}); "
                    "map only one of them",
                )
            chosen[target] = source
            used.add(source)

        explicit = {s: t for s, t in self.optional_mapping.items() if find(s) is not None}
        explicit.update(self.mapping)
        for source, target in explicit.items():
            found = find(source)
            if found is None:
                listing = ", ".join(repr(c) for c in file_columns)
                raise InputError(
                    self.name,
                    f"--map {source}={target}: the file has no column {source!r} "
                    f"(its columns: {listing})",
                )
            claim(found, target, "mapped")
        for source in file_columns:
            if source not in used and _normal(source) in spec.names:
                if _normal(source) in chosen:
                    continue  # an explicit map took this canonical name; keep the file's column
                claim(source, _normal(source), "named so in the file")

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
        targets = []
        for target, source in chosen.items():
            column = spec.column(target)
            sql_type = SQL_TYPES[column.kind] if column else stored.get(target)
            targets.append(_Target(target, source, file_columns[source], column, sql_type))
        for source in file_columns:
            if source in used:
                continue
            if source.startswith("__") or _normal(source) in spec.names:
                # A second column of a canonical name (its twin was mapped): keep it renamed.
                name = f"source_{_normal(source).lstrip('_')}"
            else:
                name = source
            targets.append(_Target(name, source, file_columns[source], None, stored.get(name)))
        return targets

    # -- the steps --------------------------------------------------------------------------------

    def run(self) -> IngestReport:
        start = time.perf_counter()
        if self.format is None:
            raise InputError(
                self.name,
                f"unknown file type {self.path.suffix!r}; use .csv, .tsv, .parquet or .jsonl",
            )
        if not self.path.is_file():
            raise InputError(self.name, "no such file")
        if self.path.stat().st_size == 0:
            raise InputError(self.name, "the file is empty")

        file_columns = self._describe()
        targets = self._resolve(file_columns)
        # Canonical columns are read as text and parsed by us, so that a bad value is reported
        # with its row rather than stopping DuckDB's reader; attributes keep the sniffed types.
        self._targets_cache = targets
        text_types = {t.source: "VARCHAR" for t in targets if t.column is not None}
        if self.format == "csv":
            for t in targets:
                if t.source in text_types:
                    t.source_type = "VARCHAR"
        source = self._source(text_types if self.format == "csv" else None)
        try:
            self._stage(source, targets)
        except duckdb.ConversionException:
            # DuckDB's sniffer typed an attribute from a sample that a later row contradicts:
            # read every column as text instead.
            for t in targets:
                if t.column is None and t.sql_type is None:
                    t.source_type = "VARCHAR"
            source = self._source({t.source: "VARCHAR" for t in targets})
            self._stage(source, targets)

        try:
            total, bad = self.con.execute(
                "SELECT count(*), count(__bad_column) FROM __staged"
            ).fetchone()
            structural = self._structural_rejects()
            if total == 0 and not structural:
                raise InputError(self.name, "the file has a header but no data rows")
            if (bad or structural) and not self.skip_invalid:
                self._raise_first_error(bad)
            rejects_file = self._write_rejects(source, structural) if bad or structural else None
            inserted, updated = self._merge(targets)
        finally:
            self.con.execute("DROP TABLE IF EXISTS __staged")
            self.con.execute("DROP TABLE IF EXISTS __rejects")
            self.con.execute("DROP TABLE IF EXISTS __reject_scans")
        valid = total - bad
        report = IngestReport(
            kind=self.spec.kind,
            file=self.name,
            rows_read=total + len(structural),
            rows_rejected=bad + len(structural),
            rows_inserted=inserted,
            rows_updated=updated,
            rows_unchanged=valid - inserted - updated,
            rejects_file=rejects_file,
            seconds=round(time.perf_counter() - start, 3),
        )
        self.con.execute(
            "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
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

    def _stage(self, source: str, targets: list[_Target]) -> None:
        """Read the file into ``__staged``: parsed columns plus the first fault of each row."""
        inner, checks = [], []
        for i, t in enumerate(targets):
            kind = t.column.kind if t.column else _attribute_kind(t.sql_type)
            if kind is None:
                value = quote(t.source)  # a new attribute: kept as DuckDB read it
            else:
                value = parse_sql(kind, quote(t.source), t.source_type, self.date_formats)
                if t.column is None and t.sql_type not in SQL_TYPES.values():
                    value = f"try_cast({value} AS {t.sql_type})"
            inner.append(f"{value} AS {quote(t.name)}")
            if kind is not None and _can_fail(kind):
                raw = f"__raw_{i}"
                inner.append(f"{quote(t.source)} AS {raw}")
                present = f"nullif(trim(CAST({raw} AS VARCHAR)), '') IS NOT NULL"
                checks.append((f"{present} AND {quote(t.name)} IS NULL", t, raw))
            if t.column is not None and t.column.required:
                checks.append((f"{quote(t.name)} IS NULL", t, None))
        # An unreadable value is reported as such, not as the missing value it parses to.
        checks.sort(key=lambda c: c[2] is None)
        bad_column = " ".join(
            f"WHEN {cond} THEN {_literal(t.source + chr(31) + ('parse' if raw else 'missing'))}"
            for cond, t, raw in checks
        )
        bad_value = " ".join(
            f"WHEN {cond} THEN CAST({raw} AS VARCHAR)" for cond, t, raw in checks if raw
        )
        keep = ", ".join(quote(t.name) for t in targets)
        sql = (
            f"CREATE TEMP TABLE __staged AS SELECT {keep}, "
            f"CASE {bad_column or 'WHEN false THEN NULL'} END AS __bad_column, "
            f"CASE {bad_value or 'WHEN false THEN NULL'} END AS __bad_value "
            f"FROM (SELECT {', '.join(inner)} FROM {source})"
        )
        try:
            self.wh.run(sql, progress=self._step(f"reading {self.path.name}"))
        except duckdb.ConversionException:
            raise
        except duckdb.Error as exc:
            raise self._duckdb_error(exc) from None

    def _step(self, description: str) -> Callable[[float], None] | None:
        if self.progress is None:
            return None
        report = self.progress
        return lambda fraction: report(description, fraction)

    def _structural_rejects(self) -> list[tuple[int, str, str]]:
        """Lines DuckDB's CSV reader skipped (``skip_invalid`` only): (line, reason, text)."""
        if not (self.skip_invalid and self.format == "csv"):
            return []
        exists = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = '__rejects'"
        ).fetchone()[0]
        if not exists:
            return []
        return self.con.execute(
            "SELECT line, error_message, csv_line FROM __rejects ORDER BY line"
        ).fetchall()

    def _lines(self, rowids: np.ndarray, structural: Sequence[int] = ()) -> np.ndarray:
        """Staged row ids -> row numbers as the user counts them in the file."""
        # Rows written inside a transaction get row ids from a large base: count from the first.
        base = self.con.execute("SELECT min(rowid) FROM __staged").fetchone()[0]
        lines = np.asarray(rowids, dtype=np.int64) - base + self.first_row
        for skipped in sorted(structural):  # lines the reader dropped shift the later ones
            lines += lines >= skipped
        return lines

    def _raise_first_error(self, bad: int) -> None:
        if not bad:
            line, reason, _ = self._structural_rejects()[0]
            raise InputError(self.name, reason, rows=[line], row_word=self.row_word)
        first = self.con.execute(
            "SELECT __bad_column, __bad_value FROM __staged WHERE __bad_column IS NOT NULL "
            "ORDER BY rowid LIMIT 1"
        ).fetchone()
        rowids = self.con.execute(
            "SELECT rowid FROM __staged WHERE __bad_column = ? ORDER BY rowid LIMIT 5", [first[0]]
        ).fetchnumpy()["rowid"]
        source, what = first[0].split(chr(31))
        target = next(t for t in self._targets_cache if t.source == source)
        reason = _reason(what, first[1], target, self.date_formats)
        raise InputError(
            self.name,
            reason,
            column=source,
            rows=self._lines(rowids).tolist(),
            n_bad=bad,
            row_word=self.row_word,
        )

    def _write_rejects(self, source: str, structural: list[tuple[int, str, str]]) -> str:
        """Write rejected rows, with line, column and reason, to ``<file>.rejects.csv``."""
        import pandas as pd

        out = self.path.with_name(self.path.name + ".rejects.csv")
        bad = self.con.execute(
            "SELECT rowid, __bad_column, __bad_value FROM __staged "
            "WHERE __bad_column IS NOT NULL ORDER BY rowid"
        ).df()
        frames = []
        if len(bad):
            # The original record of each bad row, from a second read of the same source (rare:
            # only files with rejects pay for it).
            self.con.execute(f"CREATE TEMP TABLE __raw AS SELECT * FROM {source}")
            try:
                self.con.register("__bad_rows", bad[["rowid"]])
                # Both reads number their rows from their own base, in file order.
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
            parts = bad["__bad_column"].str.split(chr(31), expand=True)
            targets = {t.source: t for t in self._targets_cache}
            frames.append(
                pd.DataFrame(
                    {
                        self.row_word: self._lines(
                            bad["rowid"].to_numpy(), [s[0] for s in structural]
                        ),
                        "column": parts[0],
                        "reason": [
                            _reason(w, v, targets[c], self.date_formats)
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
                        self.row_word: [s[0] for s in structural],
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

    # -- merging into the table ---------------------------------------------------------------

    def _prepared(self, targets: list[_Target]) -> tuple[str, list[str]]:
        """SELECT over the valid staged rows with derived columns filled in, and its columns."""
        names = [t.name for t in targets]
        plain = ", ".join(quote(n) for n in names)
        valid = f"SELECT {plain}, rowid AS __row FROM __staged WHERE __bad_column IS NULL"
        if self.spec.kind != "events":
            return valid, names
        have = set(names)

        def col(name: str, sql_type: str = "VARCHAR") -> str:
            return quote(name) if name in have else f"CAST(NULL AS {sql_type})"

        kind = f"coalesce({col('event_type')}, 'purchase')"
        qty, val = col("quantity", "DOUBLE"), col("value", "DOUBLE")
        is_return = (
            f"({kind} = 'return' OR ({kind} = 'purchase' "
            f"AND ({qty} < 0 OR ({qty} IS NULL AND {val} < 0))))"
        )
        derived = {
            "event_type": f"CASE WHEN {is_return} THEN 'return' ELSE {kind} END",
            "quantity": f"CASE WHEN {is_return} THEN abs({qty}) ELSE {qty} END",
            "value": f"CASE WHEN {is_return} THEN abs({val}) ELSE {val} END",
            # Where the file names no basket, a basket is one customer's events at one moment.
            "basket_id": f"coalesce({col('basket_id')}, customer_id || '@' || "
            "strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%f'))",
        }
        columns = list(dict.fromkeys(names + list(derived)))
        inner = ", ".join(f"{derived.get(n, quote(n))} AS {quote(n)}" for n in columns)
        # A stable content hash identifies an event the file gives no id for, so that the same
        # row ingested again (from this file or a re-export with its columns in another order)
        # is recognised. Canonical columns in schema order, absent ones as NULL, then attributes.
        canonical = [c.name for c in self.spec.columns if c.name != "event_id"]
        attributes = sorted(n for n in columns if self.spec.column(n) is None)
        content = [
            f"coalesce(CAST({quote(c) if c in columns else 'NULL'} AS VARCHAR), chr(0))"
            for c in canonical + attributes
        ]
        digest = f"md5(concat_ws(chr(31), {', '.join(content)}))"
        event_id = f"coalesce({col('event_id')}, {digest})"
        outer = ", ".join(quote(n) for n in columns if n != "event_id")
        sql = (
            f"SELECT {outer}, {event_id} AS event_id, __row FROM "
            f"(SELECT {inner}, __row FROM ({valid}))"
        )
        return sql, [c for c in columns if c != "event_id"] + ["event_id"]

    def _merge(self, targets: list[_Target]) -> tuple[int, int]:
        spec, table = self.spec, self.spec.table
        stored = self.wh.columns(table)
        staged_types = dict(
            self.con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '__staged'"
            ).fetchall()
        )
        for t in targets:
            if t.name not in stored:
                self.con.execute(
                    f"ALTER TABLE {table} ADD COLUMN {quote(t.name)} {staged_types[t.name]}"
                )
        prepared, columns = self._prepared(targets)
        names = ", ".join(quote(n) for n in columns)
        key = [quote(k) for k in spec.key]
        step = self._step(f"merging {self.path.name}")
        if spec.mode == "append":
            same_key = " AND ".join(f"t.{k} IS NOT DISTINCT FROM s.{k}" for k in key)
            sql = (
                f"INSERT INTO {table} ({names}) SELECT {names} FROM ({prepared}) s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same_key}) "
                f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY __row) = 1"
            )
            return self.wh.run(sql, progress=step), 0
        # upsert: the last row of a key in the file wins; stored keys are updated in place.
        self.con.execute(
            f"CREATE TEMP TABLE __latest AS SELECT * FROM ({prepared}) "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY __row DESC) = 1"
        )
        try:
            on = " AND ".join(f"{table}.{k} = s.{k}" for k in key)
            attrs = [quote(n) for n in columns if quote(n) not in key]
            updated = 0
            if attrs:
                changed = " OR ".join(f"{table}.{n} IS DISTINCT FROM s.{n}" for n in attrs)
                sets = ", ".join(f"{n} = s.{n}" for n in attrs)
                updated = self.wh.run(
                    f"UPDATE {table} SET {sets} FROM __latest s WHERE {on} AND ({changed})"
                )
            same_key = " AND ".join(f"t.{k} = s.{k}" for k in key)
            inserted = self.wh.run(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM __latest s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same_key})"
            )
        finally:
            self.con.execute("DROP TABLE IF EXISTS __latest")
        return inserted, updated


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _attribute_kind(sql_type: str | None) -> str | None:
    """The parse kind for an attribute already stored with ``sql_type`` (None: new attribute)."""
    if sql_type is None:
        return None
    upper = sql_type.upper()
    if upper == "VARCHAR":
        return "text"
    if upper.startswith("TIMESTAMP") or upper == "DATE":
        return "timestamp"
    if upper == "BOOLEAN":
        return "flag"
    if _is_numeric(upper):
        return "number"
    return "text"


def _reason(what: str, value: str | None, target: _Target, date_formats: Sequence[str]) -> str:
    if what == "missing":
        return f"missing value for required column {target.name!r}"
    kind = target.column.kind if target.column else _attribute_kind(target.sql_type)
    if kind == "timestamp" and date_formats:
        return f"cannot read {value!r} as a timestamp in format {' or '.join(date_formats)}"
    return f"cannot read {value!r} as {KIND_WORDS.get(kind, kind)}"
