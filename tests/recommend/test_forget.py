"""Folding customers out of fitted recommenders (erasure): Recommender.forget."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from tailor.dataset import Dataset
from tailor.recommend import REGISTRY, Recommender, factory

K = 10


@pytest.fixture(scope="module")
def forgotten(synthetic_dataset: Dataset) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """(the dataset without them, keep mask, forgotten rows): three customers, none of whom
    holds the last event (so the moment lists are for is the same with or without them)."""
    ds = synthetic_dataset
    assert ds.n_items != ds.n_customers  # the state walk below tells rows by their length
    last = ds.events["customer"].iloc[-1]
    rows = np.array([r for r in (3, 57, 120) if r != last])
    keep = np.ones(ds.n_customers, dtype=bool)
    keep[rows] = False
    return ds.without_customers(keep), keep, rows


@pytest.fixture(scope="module")
def fitted(synthetic_dataset: Dataset) -> dict[str, Recommender]:
    return {name: factory(name)().fit(synthetic_dataset) for name in REGISTRY}


def _arrays(obj: Any, seen: set[int] | None = None) -> dict[str, Any]:
    """Every array and sparse matrix a model holds, through nested models and helpers."""
    seen = seen if seen is not None else set()
    found = {}
    if id(obj) in seen or not hasattr(obj, "__dict__"):
        return found
    seen.add(id(obj))
    for name, value in vars(obj).items():
        if name == "dataset_":
            continue
        if isinstance(value, np.ndarray | sp.spmatrix | sp.sparray):
            found[name] = value
        elif hasattr(value, "__dict__") and type(value).__module__.startswith("tailor"):
            found.update({f"{name}.{k}": v for k, v in _arrays(value, seen).items()})
    return found


def test_the_dataset_without_customers_keeps_everything_else(synthetic_dataset, forgotten):
    ds = synthetic_dataset
    folded, keep, rows = forgotten
    gone = set(ds.customer_ids[rows].tolist())
    assert folded.n_customers == ds.n_customers - len(rows)
    assert not gone & set(folded.customer_ids.tolist())
    np.testing.assert_array_equal(folded.item_ids, ds.item_ids)
    assert (folded.interactions != ds.interactions[keep]).nnz == 0
    # The events kept are the others' events, each still on its own customer.
    others = ds.events.loc[keep[ds.events["customer"].to_numpy()]]
    assert len(folded.events) == len(others)
    np.testing.assert_array_equal(
        folded.customer_ids[folded.events["customer"]], ds.customer_ids[others["customer"]]
    )
    assert list(folded.customers["customer_id"]) == list(folded.customer_ids)
    for frame in (folded.campaign_members, folded.redemptions):
        if "customer_id" in frame:
            assert not gone & set(frame["customer_id"].tolist())


@pytest.mark.parametrize("name", list(REGISTRY))
def test_forget_drops_every_row_of_the_forgotten(name, synthetic_dataset, fitted, forgotten):
    folded, keep, rows = forgotten
    before = {
        k: v.shape
        for k, v in _arrays(fitted[name]).items()
        if v.shape[0] == synthetic_dataset.n_customers
    }
    assert "history_" in before
    model = factory(name)().fit(synthetic_dataset).forget(folded, keep)
    after = _arrays(model)
    for attribute, shape in before.items():
        assert after[attribute].shape[0] == folded.n_customers, attribute
        assert after[attribute].shape[1:] == shape[1:], attribute
    gone = synthetic_dataset.customer_ids[rows]
    lists = model.recommend(gone, k=K)
    cold = model.recommend(["never-seen"], k=K)
    for customer in gone:
        assert list(lists.loc[lists["customer_id"] == customer, "item_id"]) == list(cold["item_id"])


@pytest.mark.parametrize("name", [n for n in REGISTRY if factory(n)().fold_out == "exact"])
def test_an_exact_fold_out_equals_fitting_without_them(name, synthetic_dataset, forgotten):
    folded, keep, _ = forgotten
    model = factory(name)().fit(synthetic_dataset).forget(folded, keep)
    fresh = factory(name)().fit(folded)
    customers = folded.customer_ids
    ours = model.recommend(customers, k=K)
    theirs = fresh.recommend(customers, k=K)
    assert list(ours["item_id"]) == list(theirs["item_id"])
    np.testing.assert_allclose(ours["score"], theirs["score"], rtol=1e-5, atol=1e-6)
    assert list(ours["reason"]) == list(theirs["reason"])


@pytest.mark.parametrize("name", [n for n in REGISTRY if factory(n)().fold_out == "retrain"])
def test_a_retrain_model_keeps_the_others_own_state(name, synthetic_dataset, fitted, forgotten):
    folded, keep, _ = forgotten
    original = _arrays(fitted[name])
    model = factory(name)().fit(synthetic_dataset).forget(folded, keep)
    for attribute, value in _arrays(model).items():
        if attribute.endswith("cold_start_"):  # recent popularity: counted again without them
            continue
        was = original[attribute]
        if was.shape[0] == synthetic_dataset.n_customers:
            was = was[keep]
        if sp.issparse(value):
            assert (sp.csr_matrix(value) != sp.csr_matrix(was)).nnz == 0, attribute
        else:
            np.testing.assert_array_equal(value, was, err_msg=attribute)
