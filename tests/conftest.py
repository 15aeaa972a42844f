"""Fixtures shared by the tests: warehouses built through the real ingest path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from tailor.dataset import Dataset
from tailor.store import Warehouse, ingest_files
from tailor.synthetic import SyntheticData, generate, write

MakeWarehouse = Callable[..., Warehouse]


@pytest.fixture(scope="session")
def make_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeWarehouse]:
    """make_warehouse(fmt="csv", events=frame, items=frame, ...) -> an open warehouse file in a
    fresh folder, each frame written there as a file of ``fmt`` (csv or parquet) and ingested,
    in the order given, with ``tailor.store.ingest_files``. Closed at the end of the session."""
    opened: list[Warehouse] = []

    def make(fmt: str = "csv", **frames: pd.DataFrame) -> Warehouse:
        folder = tmp_path_factory.mktemp("warehouse")
        wh = Warehouse(folder / "shop.duckdb")
        opened.append(wh)
        for table, frame in frames.items():
            path = folder / f"{table}.{fmt}"
            if fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            ingest_files(wh, table.replace("_", "-"), [path])
        return wh

    yield make
    for wh in opened:
        wh.close()


@pytest.fixture(scope="session")
def synthetic() -> SyntheticData:
    """``tailor.synthetic.generate()`` with its defaults (200 customers, 300 items, 180 days)."""
    return generate()


@pytest.fixture(scope="session")
def synthetic_db(tmp_path_factory: pytest.TempPathFactory, synthetic: SyntheticData) -> Path:
    """A warehouse file holding every table of ``synthetic``, ingested from Parquet."""
    folder = tmp_path_factory.mktemp("synthetic")
    db = folder / "shop.duckdb"
    with Warehouse(db) as wh:
        for table, path in write(synthetic, folder, fmt="parquet").items():
            ingest_files(wh, table.replace("_", "-"), [path])
    return db


@pytest.fixture(scope="session")
def synthetic_dataset(synthetic_db: Path) -> Dataset:
    with Warehouse(synthetic_db, read_only=True) as wh:
        return Dataset.from_warehouse(wh)
