"""Errors a user can act on.

Every error a user can cause is a :class:`TailorError`; the CLI prints its message on one line and
exits non-zero. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class TailorError(Exception):
    """An error caused by the user's input or settings, with a message that says what to do."""


class ConfigError(TailorError):
    """A setting in tailor.toml, an environment variable or an option is wrong."""


class WarehouseError(TailorError):
    """The warehouse file cannot be opened or is of an unknown schema version."""


class EncryptionError(TailorError):
    """Encrypted data (the warehouse or a build file) cannot be read or written with the key
    configured: none is set, it is another key, or the file was changed."""


class PseudonymError(TailorError):
    """Customer ids cannot be pseudonymized as asked: no pseudonym key, another key than the
    warehouse's, or raw ids that would meet pseudonymous ones."""


class InputError(TailorError):
    """An input file cannot be ingested.

    Parameters
    ----------
    file : str
        The file as the user named it.
    reason : str
        What is wrong, in words.
    column : str, optional
        The column of the file (its own name, not the canonical one) at fault.
    rows : sequence of int, optional
        The first offending rows, numbered as a user counts them in the file (CSV and JSON lines:
        the line number, header included; Parquet: the 1-based row).
    n_bad : int, optional
        How many rows are at fault in all.
    """

    def __init__(
        self,
        file: str,
        reason: str,
        *,
        column: str | None = None,
        rows: Sequence[int] = (),
        n_bad: int | None = None,
        row_word: str = "line",
    ) -> None:
        self.file = file
        self.reason = reason
        self.column = column
        self.rows = list(rows)
        self.n_bad = n_bad
        where = [file]
        if column is not None:
            where.append(f"column {column!r}")
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows)
            plural = "s" if len(self.rows) > 1 else ""
            where.append(f"{row_word}{plural} {shown}")
        message = f"{': '.join(where)}: {reason}"
        if n_bad is not None and n_bad > len(self.rows):
            message += f" ({n_bad} bad rows in all; --skip-invalid loads the others)"
        super().__init__(message)
