"""Fixtures for the warehouse and ingest tests: a fresh warehouse and tiny input files."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tailor.store import KINDS, Warehouse
from tailor.store.schema import quote

Write = Callable[[str, "str | bytes | pd.DataFrame"], Path]


@pytest.fixture(scope="session")
def empty_warehouse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new, migrated, empty warehouse file: copied for each test (faster than migrating)."""
    path = tmp_path_factory.mktemp("template") / "empty.duckdb"
    Warehouse(path).close()
    return path


@pytest.fixture
def wh(tmp_path: Path, empty_warehouse_file: Path) -> Iterator[Warehouse]:
    """A fresh warehouse file, tmp_path / "w.duckdb"."""
    path = tmp_path / "w.duckdb"
    shutil.copyfile(empty_warehouse_file, path)
    with Warehouse(path) as warehouse:
        yield warehouse


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """write(name, content) -> path: text or bytes as given; a DataFrame as Parquet (.parquet)
    or JSON lines (.jsonl)."""

    def _write(name: str, content: str | bytes | pd.DataFrame) -> Path:
        path = tmp_path / name
        if isinstance(content, pd.DataFrame):
            if path.suffix == ".parquet":
                content.to_parquet(path, index=False)
            else:
                content.to_json(path, orient="records", lines=True)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


def _snapshot(wh: Warehouse) -> dict[str, Any]:
    return {
        spec.table: (wh.columns(spec.table), wh.table_digest(spec.table)) for spec in KINDS.values()
    }


def _rows(wh: Warehouse, table: str, *columns: str) -> list[tuple]:
    names = ", ".join(quote(c) for c in columns)
    return wh.con.execute(f"SELECT {names} FROM {table} ORDER BY ALL").fetchall()


@pytest.fixture
def snapshot() -> Callable[[Warehouse], dict[str, Any]]:
    """snapshot(wh): each canonical table's column types and content digest, i.e. everything
    an ingest may change; equal snapshots mean an unchanged warehouse."""
    return _snapshot


@pytest.fixture
def rows() -> Callable[..., list[tuple]]:
    """rows(wh, table, *columns): those columns of every row of the table, sorted."""
    return _rows
