"""Tests for tailor.build: a build is published whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tailor.build
from tailor.build import (
    CURRENT,
    RULES_MIN_SUPPORT,
    build,
    builds_dir,
    current_build,
    load_dataset_arrays,
    load_rules,
)
from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend import REGISTRY
from tailor.recommend.rules import association_rules
from tailor.store import Warehouse

QUICK = ["recency_frequency"]  # one fast recommender where the test is not about them


@pytest.fixture(scope="module")
def wh(synthetic_db: Path) -> Iterator[Warehouse]:
    with Warehouse(synthetic_db, read_only=True) as warehouse:
        yield warehouse


def _entries(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_builds_dir():
    assert builds_dir(Path("data/shop.duckdb")) == Path("data/shop.builds")


def test_build_publishes_a_complete_folder(
    wh: Warehouse, synthetic_dataset: Dataset, tmp_path: Path
):
    info = build(wh, tmp_path / "builds")
    assert info.path == tmp_path / "builds" / info.build_id
    assert _entries(info.path) == {
        "manifest.json", "interactions.npz", "customer_ids.npy", "item_ids.npy", "dataset.pkl",
        "recommenders", "rules.parquet", "customers", "offers", "opt_outs.parquet",
    }  # fmt: skip
    assert _entries(info.path / "offers") == {"scores.parquet", "campaigns.parquet", "summary.json"}
    assert _entries(info.path / "recommenders") == {f"{name}.pkl" for name in REGISTRY}
    assert _entries(info.path / "customers") == {
        "customers.parquet", "segments.parquet", "clusters.parquet", "anomalies.parquet",
        "attribute_predictions.parquet", "attribute_evaluation.parquet", "summary.json",
    }  # fmt: skip
    assert _entries(tmp_path / "builds") == {CURRENT, info.build_id}
    assert (tmp_path / "builds" / CURRENT).read_text() == info.build_id
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest == info.manifest
    assert manifest["build_id"] == info.build_id
    assert manifest["tailor_version"] == tailor.__version__
    assert manifest["warehouse"] == str(wh.path.resolve())
    assert manifest["dataset"] == synthetic_dataset.summary()
    assert manifest["dataset"]["customers"] == 200 and manifest["dataset"]["items"] == 300
    assert set(manifest["steps"]) == {"dataset", "validation", "rules", "customers", "offers"} | {
        f"fit {n}" for n in REGISTRY
    }
    # The pairs bought together, as association_rules finds them on the same dataset.
    rules = load_rules(info)
    expected = association_rules(synthetic_dataset, min_support=RULES_MIN_SUPPORT)
    assert manifest["rules"] == {
        "min_support": RULES_MIN_SUPPORT, "count": len(expected),
        "baskets": expected.attrs["baskets"],
    }  # fmt: skip
    assert len(expected) > 0
    pd.testing.assert_frame_equal(rules, expected)
    selection = manifest["recommenders"]
    assert set(selection["validation"]) == set(REGISTRY)
    # The default is the best on validation, by NDCG@20.
    best = max(REGISTRY, key=lambda n: selection["validation"][n]["ndcg@20"])
    assert selection["default"] == best
    # The synthetic customers rebuy staples: their own history beats popularity.
    figures = selection["validation"]
    assert figures["personal_frequency"]["recall@20"] > 1.5 * figures["popularity"]["recall@20"]


def test_current_build_and_arrays_round_trip(
    wh: Warehouse, synthetic_dataset: Dataset, tmp_path: Path
):
    info = build(wh, tmp_path, recommenders=QUICK)
    current = current_build(tmp_path)
    assert (current.build_id, current.path, current.manifest) == (
        info.build_id, info.path, info.manifest,
    )  # fmt: skip
    interactions, customer_ids, item_ids = load_dataset_arrays(current)
    expected = synthetic_dataset.interactions
    assert interactions.dtype == np.float32 and interactions.shape == expected.shape
    assert (interactions != expected).nnz == 0
    assert customer_ids.dtype == np.int64 and item_ids.dtype == np.int64
    assert np.array_equal(customer_ids, synthetic_dataset.customer_ids)
    assert np.array_equal(item_ids, synthetic_dataset.item_ids)


def test_text_ids_round_trip(make_warehouse, tmp_path: Path):
    events = pd.DataFrame(
        {"customer_id": ["ann", "bo"], "item_id": ["00123", "X"], "timestamp": ["2024-01-01"] * 2}
    )
    shop = make_warehouse(events=events)
    _, customer_ids, item_ids = load_dataset_arrays(build(shop, tmp_path, recommenders=QUICK))
    assert customer_ids.tolist() == ["ann", "bo"] and item_ids.tolist() == ["00123", "X"]


def test_build_as_of_and_weights(wh: Warehouse, tmp_path: Path):
    weights = {"purchase": 2.0, "view": 0.0}
    info = build(wh, tmp_path, as_of="2024-03-31", weights=weights, recommenders=QUICK)
    expected = Dataset.from_warehouse(wh, as_of="2024-03-31", weights=weights)
    assert info.manifest["dataset"]["as_of"] == "2024-04-01T00:00:00"
    assert info.manifest["dataset"]["last_event"] < "2024-04-01"
    assert info.manifest["weights"]["purchase"] == 2.0
    interactions, _, _ = load_dataset_arrays(info)
    assert (interactions != expected.interactions).nnz == 0


def test_second_build_replaces_current(wh: Warehouse, tmp_path: Path):
    first = build(wh, tmp_path, recommenders=QUICK)
    second = build(wh, tmp_path, as_of="2024-02-01", recommenders=QUICK)
    assert second.build_id != first.build_id
    assert current_build(tmp_path).build_id == second.build_id
    assert current_build(tmp_path).manifest["dataset"]["as_of"] == "2024-02-02T00:00:00"
    # the first stays readable for whoever still holds it
    assert (first.path / "manifest.json").is_file()
    assert _entries(tmp_path) == {CURRENT, first.build_id, second.build_id}


def test_failed_build_keeps_the_previous_one(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    good = build(wh, tmp_path, recommenders=QUICK)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tailor.build.sp, "save_npz", broken)
    with pytest.raises(OSError, match="disk full"):
        build(wh, tmp_path, recommenders=QUICK)
    assert current_build(tmp_path).build_id == good.build_id
    assert _entries(tmp_path) == {CURRENT, good.build_id}
    interactions, _, _ = load_dataset_arrays(current_build(tmp_path))
    assert interactions.nnz == good.manifest["dataset"]["interactions"]


def test_build_failing_to_publish_leaves_nothing(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    good = build(wh, tmp_path, recommenders=QUICK)
    replace = tailor.build.os.replace

    def no_pointer(src, dst):
        if Path(dst).name == CURRENT:
            raise OSError("read-only file system")
        replace(src, dst)

    monkeypatch.setattr(tailor.build.os, "replace", no_pointer)
    with pytest.raises(OSError, match="read-only"):
        build(wh, tmp_path, recommenders=QUICK)
    assert current_build(tmp_path).build_id == good.build_id
    assert _entries(tmp_path) == {CURRENT, good.build_id}


def test_failed_dataset_leaves_no_folder(tmp_path: Path, wh: Warehouse):
    with pytest.raises(TailorError, match="as_of"):
        build(wh, tmp_path / "builds", as_of="not a date", recommenders=QUICK)
    assert not (tmp_path / "builds").exists()


def test_current_build_without_a_build(tmp_path: Path):
    with pytest.raises(TailorError, match="no build yet"):
        current_build(tmp_path)
    with pytest.raises(TailorError, match="no build yet"):
        current_build(tmp_path / "missing")


def test_current_build_naming_a_missing_build(tmp_path: Path):
    (tmp_path / CURRENT).write_text("20240101T000000000000Z")
    with pytest.raises(TailorError, match="cannot be read"):
        current_build(tmp_path)
