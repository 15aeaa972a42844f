"""Hyper-parameter search on a validation period carved from the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailor.cli import app
from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.evaluate.runner import evaluate_models
from tailor.evaluate.tuning import grid_search
from tailor.recommend import PersonalFrequency


def test_every_setting_scored_and_sorted(synthetic_dataset: Dataset):
    frame = grid_search(
        synthetic_dataset, "recency_frequency", {"half_life_days": [None, 7.0, 60.0]}, k=10
    )
    assert sorted(frame["half_life_days"].fillna(-1)) == [-1, 7.0, 60.0]
    assert frame["ndcg@10"].is_monotonic_decreasing
    # a setting's figures are what evaluating that model on the same split gives
    train, valid = synthetic_dataset.temporal_split(28)
    direct = evaluate_models(
        train, valid, {"m": lambda: PersonalFrequency(half_life_days=7.0)}, 10, confidence=False
    )["m"]
    row = frame[frame["half_life_days"] == 7.0].iloc[0]
    assert row["recall@10"] == pytest.approx(direct["recall@10"], abs=1e-12)


def test_budget_samples_the_grid(synthetic_dataset: Dataset):
    grid = {"half_life_days": [7.0, 14.0, 30.0], "window_days": [7, 28]}
    with pytest.raises(TailorError, match="no hyper-parameter 'window_days'"):
        grid_search(synthetic_dataset, "recency_frequency", grid, budget=2)
    frame = grid_search(synthetic_dataset, "popularity", {"window_days": [7, 14, 28, 56]}, budget=2)
    assert len(frame) == 2 and set(frame["window_days"]) <= {7, 14, 28, 56}
    with pytest.raises(TailorError, match="unknown recommender"):
        grid_search(synthetic_dataset, "nope", {"x": [1]})


def test_cli_tune(synthetic_db: Path):
    result = CliRunner().invoke(
        app,
        ["tune", "popularity", "--param", "window_days=7,28", "--k", "10", "--db",
         str(synthetic_db), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["window_days"] for row in rows} == {7, 28}
    assert rows[0]["ndcg@10"] >= rows[1]["ndcg@10"]
    bad = CliRunner().invoke(app, ["tune", "popularity", "--param", "window_days", "--db",
                                   str(synthetic_db)])  # fmt: skip
    assert bad.exit_code == 1 and "NAME=V1,V2" in bad.output
