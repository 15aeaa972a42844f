"""Fixtures for the recommender tests: tiny hand-made shops, ingested through the real path."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import pytest
from handmade import ITEMS, SHOP, SHOP_AS_OF, events_frame

from tailor.dataset import Dataset

MakeDataset = Callable[..., Dataset]


@pytest.fixture(scope="session")
def make_dataset(make_warehouse) -> MakeDataset:
    """make_dataset(rows, items=ITEMS, as_of=None) -> the Dataset of a warehouse holding the
    catalogue ``items`` and the events ``rows`` (see :func:`events_frame`)."""

    def make(
        rows: Sequence[tuple], items: pd.DataFrame = ITEMS, as_of: str | None = None
    ) -> Dataset:
        wh = make_warehouse(items=items, events=events_frame(rows))
        return Dataset.from_warehouse(wh, as_of=as_of)

    return make


@pytest.fixture(scope="session")
def shop(make_dataset: MakeDataset) -> Dataset:
    return make_dataset(SHOP, as_of=SHOP_AS_OF)
