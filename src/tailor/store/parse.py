"""SQL that reads a source column as a canonical column kind (id, number, timestamp, flag...).

Each function returns DuckDB SQL text over a source expression; the value is NULL where the
source cannot be read, which the ingest turns into a row-level error.
"""

from __future__ import annotations

from collections.abc import Sequence

TRUE_WORDS = ("1", "true", "t", "yes", "y")
FALSE_WORDS = ("0", "false", "f", "no", "n")
# Epoch numbers below 1e11 are seconds (up to the year 5138); up to 1e14, milliseconds.
EPOCH_SECONDS_MAX = 1e11
EPOCH_MILLIS_MAX = 1e14
# An id is stored as an integer only when its text round-trips: no sign, no leading zeros.
INTEGER_ID_RE = "-?[1-9][0-9]{0,17}|0"

INTEGER_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}  # fmt: skip
FRACTIONAL_TYPES = {"FLOAT", "DOUBLE", "DECIMAL", "REAL"}


def literal(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def base_type(sql_type: str) -> str:
    return sql_type.split("(")[0].strip().upper()


def is_integer(sql_type: str) -> bool:
    return base_type(sql_type) in INTEGER_TYPES


def is_numeric(sql_type: str) -> bool:
    return base_type(sql_type) in INTEGER_TYPES | FRACTIONAL_TYPES


def is_temporal(sql_type: str) -> bool:
    upper = base_type(sql_type)
    return upper.startswith("TIMESTAMP") or upper == "DATE"


def kind_of_type(sql_type: str) -> str:
    """The parse kind that produces a value of a stored attribute's type."""
    upper = base_type(sql_type)
    if is_temporal(upper):
        return "timestamp"
    if upper == "BOOLEAN":
        return "flag"
    if is_numeric(upper):
        return "number"
    return "text"


def _epoch(x: str) -> str:
    return (
        f"CASE WHEN abs({x}) < {EPOCH_SECONDS_MAX:.0f} "
        f"THEN make_timestamp(CAST(round({x} * 1e6) AS BIGINT)) "
        f"WHEN abs({x}) < {EPOCH_MILLIS_MAX:.0f} "
        f"THEN make_timestamp(CAST(round({x} * 1e3) AS BIGINT)) END"
    )


def as_text(src: str, src_type: str) -> tuple[str, str]:
    """(expression, type) reading a JSON-typed source as text, other sources unchanged.

    DuckDB types a JSON-lines field holding both strings and numbers as JSON, whose text keeps
    the quotes of a string ('"abc"'); its unquoted value is what the user wrote.
    """
    if base_type(src_type) == "JSON":
        return f"json_extract_string({src}, '$')", "VARCHAR"
    return src, src_type


def text_sql(src: str, src_type: str) -> str:
    """Text of a source value: trimmed, empty as NULL; 123.0 from a float column is "123"."""
    src, src_type = as_text(src, src_type)
    if base_type(src_type) == "VARCHAR":
        return f"nullif(trim({src}), '')"
    if base_type(src_type) in FRACTIONAL_TYPES:
        # NaN is pandas' missing value in a float column (integer ids with gaps become floats).
        return (
            f"CASE WHEN isnan({src}) THEN NULL "
            f"WHEN {src} = trunc({src}) AND abs({src}) < 1e18 "
            f"THEN CAST(CAST({src} AS BIGINT) AS VARCHAR) ELSE CAST({src} AS VARCHAR) END"
        )
    return f"CAST({src} AS VARCHAR)"


def parse_sql(kind: str, src: str, src_type: str, date_formats: Sequence[str] = ()) -> str:
    """SQL reading source expression ``src`` (of DuckDB type ``src_type``) as a canonical kind.

    Timestamps: ISO 8601 dates and datetimes (an offset such as ``Z`` or ``+02:00`` is converted
    to UTC), epoch seconds or milliseconds (told apart by size), or only ``date_formats`` when
    given. Flags: 1/0, true/false, t/f, yes/no, y/n.
    """
    src, src_type = as_text(src, src_type)
    upper = base_type(src_type)
    if kind in ("id", "text"):
        return text_sql(src, src_type)
    if kind == "event_type":
        return f"lower({text_sql(src, src_type)})"
    if kind == "number":
        value = f"nullif(trim({src}), '')" if upper == "VARCHAR" else src
        return f"try_cast({value} AS DOUBLE)"
    if kind == "flag":
        if upper == "BOOLEAN":
            return src
        if is_numeric(upper):
            return f"({src} <> 0)"
        low = f"lower(trim(CAST({src} AS VARCHAR)))"
        trues = ", ".join(literal(w) for w in TRUE_WORDS)
        falses = ", ".join(literal(w) for w in FALSE_WORDS)
        return f"CASE WHEN {low} IN ({trues}) THEN true WHEN {low} IN ({falses}) THEN false END"
    if kind == "timestamp":
        if upper in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
            return f"timezone('UTC', {src})"
        if is_temporal(upper):
            return f"CAST({src} AS TIMESTAMP)"
        if is_numeric(upper):
            return _epoch(f"CAST({src} AS DOUBLE)")
        t = text_sql(src, "VARCHAR" if upper == "VARCHAR" else src_type)
        if date_formats:
            formats = "[" + ", ".join(literal(f) for f in date_formats) + "]"
            parsed = f"try_strptime({t}, {formats})"
            if any("%z" in f or "%Z" in f for f in date_formats):
                parsed = f"timezone('UTC', {parsed})"
            return f"CAST({parsed} AS TIMESTAMP)"
        return (
            f"CASE WHEN regexp_full_match({t}, '[+-]?[0-9]+(\\.[0-9]*)?') "
            f"THEN {_epoch(f'CAST({t} AS DOUBLE)')} "
            f"WHEN regexp_matches({t}, '[0-9]:[0-9]{{2}}(:[0-9]{{2}}(\\.[0-9]+)?)?\\s*"
            f"(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
            f"THEN timezone('UTC', try_cast({t} AS TIMESTAMPTZ)) "
            f"ELSE try_cast({t} AS TIMESTAMP) END"
        )
    raise ValueError(f"unknown column kind {kind!r}")


def can_fail(kind: str) -> bool:
    """Whether reading a present value as ``kind`` can fail (ids and text never do)."""
    return kind in ("number", "timestamp", "flag")
