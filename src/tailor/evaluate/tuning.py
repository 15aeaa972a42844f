"""Hyper-parameter search with a budget, on a validation split carved from the training data.

A compact random search over a grid (all of it when the grid is no larger than the budget):
each setting is fitted on all but the last ``validation_days`` of the dataset it is given and
scored on those days, so that a test period kept outside that dataset is never seen. Optuna
would add little at these budgets (tens of fits), so a seeded sample of the grid does it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.evaluate.runner import SELECTION_METRIC, evaluate_models
from tailor.recommend import REGISTRY, Recommender


def grid_search(
    dataset: Dataset,
    name: str,
    grid: Mapping[str, Sequence[Any]],
    k: int = 20,
    validation_days: float = 28,
    budget: int = 12,
    random_state: int = 0,
    progress: Callable[[str, float], None] | None = None,
) -> pd.DataFrame:
    """Validation figures of ``budget`` settings of recommender ``name``, best first.

    Returns a DataFrame with one column per hyper-parameter, then ndcg@k, recall@k,
    precision@k and fit_seconds; sorted by ndcg@k.
    """
    if name not in REGISTRY:
        raise TailorError(f"unknown recommender {name!r}; known: {', '.join(REGISTRY)}")
    if not grid:
        raise TailorError("give at least one hyper-parameter to search, e.g. half_life_days")
    keys = list(grid)
    settings = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())
    ]
    if len(settings) > budget:
        chosen = np.random.default_rng(random_state).choice(len(settings), budget, replace=False)
        settings = [settings[i] for i in sorted(chosen)]
    train, valid = dataset.temporal_split(validation_days)
    factories = {f"#{n}": _maker(name, params) for n, params in enumerate(settings)}
    results = evaluate_models(train, valid, factories, k, progress=progress, confidence=False)
    rows = []
    for (label, figures), params in zip(results.items(), settings, strict=True):
        del label
        rows.append(
            {
                **params,
                f"{SELECTION_METRIC}@{k}": figures[f"{SELECTION_METRIC}@{k}"],
                f"recall@{k}": figures[f"recall@{k}"],
                f"precision@{k}": figures[f"precision@{k}"],
                "fit_seconds": figures["fit_seconds"],
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values(f"{SELECTION_METRIC}@{k}", ascending=False, ignore_index=True)


def _maker(name: str, params: Mapping[str, Any]) -> Callable[[], Recommender]:
    def make() -> Recommender:
        model = REGISTRY[name]()
        unknown = [p for p in params if p not in vars(model)]
        if unknown:
            raise TailorError(
                f"{name} has no hyper-parameter {unknown[0]!r}; it has {', '.join(vars(model))}"
            )
        for key, value in params.items():
            setattr(model, key, value)  # hyper-parameters are plain attributes (sklearn style)
        model.name = name
        return model

    return make
