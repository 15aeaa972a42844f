"""The fairness audit: hand-worked groups, exposure and parity re-ranks, their invariants, the
report's fairness section, and a real ``tailor evaluate --fairness`` run checked against the
warehouse with plain SQL."""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tailor.cli import app
from tailor.dataset import Dataset
from tailor.evaluate.fairness import (
    UNKNOWN,
    attribute_labels,
    customer_attributes,
    exposure,
    exposure_gap,
    exposure_parity,
    group_quality,
    parity_rerank,
)
from tailor.evaluate.metrics import ranking_metrics
from tailor.evaluate.report import write_report
from tailor.evaluate.runner import RankedLists, evaluate_models
from tailor.recommend import PersonalFrequency, Popularity

K = 10
PNG = b"\x89PNG\r\n\x1a\n"
# The net interaction weight of a (customer, item), as tests/e2e/test_cli_recommend.py writes it.
NET_WEIGHT = """sum(CASE event_type WHEN 'purchase' THEN 1 WHEN 'cart' THEN 0.5 WHEN 'view'
    THEN 0.1 WHEN 'return' THEN -1 ELSE 0 END * log2(1 + greatest(coalesce(quantity, 1), 1)))"""


def without_timing(figures: dict[str, Any]) -> str:
    """A model's figures but its seconds, as comparable text (NaN equals NaN)."""
    timing = ("fit_seconds", "recommend_seconds")
    return json.dumps({k: v for k, v in figures.items() if k not in timing}, sort_keys=True)


# -- customer groups ------------------------------------------------------------------------------


def test_group_quality_worked_by_hand():
    # Group "2" (3 customers): recall 0.5, 0.5, 1.0 -> 2/3; ndcg 0.3, 0.6, 0.9 -> 0.6.
    # Group "10" (2 customers): recall 0.2, 0.4 -> 0.3; ndcg 0.6, 0.6 -> 0.6.
    # Group "Under 2" (1 customer) and unknown (2) are shown, but stay out of the ratio.
    labels = np.array(["2", "2", "2", "10", "10", "Under 2", UNKNOWN, UNKNOWN], dtype=object)
    per_user = {
        "recall": np.array([0.5, 0.5, 1.0, 0.2, 0.4, 0.0, 0.1, 0.1]),
        "ndcg": np.array([0.3, 0.6, 0.9, 0.6, 0.6, 0.0, 1.0, 1.0]),
        "precision": np.zeros(8),
    }
    quality = group_quality(per_user, labels, k=5, min_customers=2)
    groups = quality["groups"]
    # Natural order: numbers as numbers ("Under 2" just below 2), unknown last.
    assert list(groups) == ["Under 2", "2", "10", UNKNOWN]
    assert [g["customers"] for g in groups.values()] == [1, 3, 2, 2]
    assert groups["2"]["recall@5"] == pytest.approx(2 / 3)
    assert groups["10"]["recall@5"] == pytest.approx(0.3)
    assert quality["compared"] == ["2", "10"]
    assert quality["worst_best_ratio"]["recall@5"] == pytest.approx(0.3 / (2 / 3))  # 0.45
    assert (quality["worst"]["recall@5"], quality["best"]["recall@5"]) == ("10", "2")
    assert quality["worst_best_ratio"]["ndcg@5"] == pytest.approx(1.0)  # 0.6 both
    # The interval of a group whose customers all score alike is that score.
    assert groups["10"]["ci95"]["ndcg@5"] == pytest.approx([0.6, 0.6])
    low, high = groups["2"]["ci95"]["recall@5"]
    assert 0.5 <= low <= 2 / 3 <= high <= 1.0


def test_group_quality_without_two_groups_to_compare():
    labels = np.array(["a"] * 40 + ["b"] * 3 + [UNKNOWN] * 50, dtype=object)
    per_user = {m: np.linspace(0, 1, len(labels)) for m in ("recall", "ndcg", "precision")}
    quality = group_quality(per_user, labels, k=5, confidence=False)
    assert quality["compared"] == ["a"]  # "b" is below 30 customers, unknown never compared
    assert math.isnan(quality["worst_best_ratio"]["recall@5"])
    assert quality["worst"]["recall@5"] is None and quality["best"]["recall@5"] is None
    assert "ci95" not in quality["groups"]["a"]


def test_a_best_group_at_zero_gives_no_ratio():
    labels = np.array(["a", "a", "b", "b"], dtype=object)
    zeros = np.zeros(4)
    quality = group_quality({"recall": zeros, "ndcg": zeros, "precision": zeros}, labels, 5, 2)
    assert math.isnan(quality["worst_best_ratio"]["recall@5"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["x", "y", "z", UNKNOWN]), st.floats(0, 1)), min_size=1))
def test_group_quality_invariants(rows):
    labels = np.array([label for label, _ in rows], dtype=object)
    values = np.array([value for _, value in rows])
    per_user = {"recall": values, "ndcg": values[::-1].copy(), "precision": values}
    quality = group_quality(per_user, labels, k=3, min_customers=1, n_boot=50)
    groups = quality["groups"]
    assert sum(g["customers"] for g in groups.values()) == len(rows)
    # The customer-weighted mean of the groups is the overall mean.
    weighted = sum(g["customers"] * g["recall@3"] for g in groups.values())
    assert weighted / len(rows) == pytest.approx(values.mean())
    for key in ("recall@3", "ndcg@3"):
        ratio = quality["worst_best_ratio"][key]
        assert math.isnan(ratio) or 0 <= ratio <= 1 + 1e-12
        if not math.isnan(ratio):
            worst, best = quality["worst"][key], quality["best"][key]
            assert ratio == pytest.approx(groups[worst][key] / groups[best][key])
        for group in groups.values():
            low, high = group["ci95"][key]
            assert low - 1e-12 <= group[key] <= high + 1e-12


def test_attribute_labels_choose_groupings():
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 6],
            "consent_marketing": [True, False, True, True, False, True],
            "age_band": ["25-34", "65+", None, "25-34", "19-24", "65+"],
            "household_size": [1.0, 2.0, None, 3.0, 1.0, 2.0],  # gaps make ints float
            "spend": [10.5, 3.2, 8.8, 1.1, 2.5, 4.0],  # a measure
            "single": ["a"] * 6,  # one value: no grouping
            "postcode": [f"P{i}" for i in range(6)],  # more values than max_levels below
        }
    )
    labels = attribute_labels(frame, max_levels=5, skip=["customer_id", "consent_marketing"])
    assert list(labels) == ["age_band", "household_size"]
    assert list(labels["age_band"]) == ["25-34", "65+", UNKNOWN, "25-34", "19-24", "65+"]
    assert list(labels["household_size"]) == ["1", "2", UNKNOWN, "3", "1", "2"]
    # Named columns are labelled whatever their number of values; an unknown one is an error.
    assert list(attribute_labels(frame, 5, ["single"])) == ["single"]
    with pytest.raises(Exception, match="no attribute 'colour'"):
        attribute_labels(frame, 5, ["colour"])


# -- item exposure --------------------------------------------------------------------------------


def test_exposure_worked_by_hand():
    # Items 0 and 2 are National, 1 and 3 Private. Lists: [0, 1, pad], [0, 2, 2] (the second 2
    # is no new slot): 4 slots, National 3 (0, 0, 2), Private 1.
    # Purchases 1, 1, 2, 4: National 3 of 8, Private 5 of 8.
    labels = np.array(["National", "Private", "National", "Private"], dtype=object)
    lists = np.array([[0, 1, -1], [0, 2, 2]])
    shown = exposure(lists, labels, np.array([1.0, 1.0, 2.0, 4.0]))
    assert list(shown["values"]) == ["Private", "National"]  # largest purchase share first
    national, private = shown["values"]["National"], shown["values"]["Private"]
    assert (national["slots"], national["purchases"]) == (0.75, 0.375)
    assert (private["slots"], private["purchases"]) == (0.25, 0.625)
    assert national["ratio"] == pytest.approx(2.0) and private["ratio"] == pytest.approx(0.4)
    # Total variation: (|0.75 - 0.375| + |0.25 - 0.625|) / 2.
    assert shown["gap"] == pytest.approx(0.375)


def test_exposure_of_a_value_nobody_bought():
    labels = np.array(["a", "b", "c"], dtype=object)
    shown = exposure(np.array([[0, 1]]), labels, np.array([2.0, 0.0, 0.0]))
    assert set(shown["values"]) == {"a", "b"}  # c was neither shown nor bought
    assert math.isnan(shown["values"]["b"]["ratio"])
    assert shown["gap"] == pytest.approx(0.5)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
)
def test_exposure_shares_sum_to_one(n_users, k, seed):
    rng = np.random.default_rng(seed)
    n_items = 8
    lists = rng.integers(-1, n_items, size=(n_users, k))
    lists[0, 0] = rng.integers(n_items)  # at least one slot
    labels = rng.choice(np.array(["a", "b", "c"], dtype=object), n_items)
    purchases = rng.integers(0, 5, n_items).astype(float)
    purchases[0] += 1
    shown = exposure(lists, labels, purchases)
    assert sum(v["slots"] for v in shown["values"].values()) == pytest.approx(1.0)
    assert sum(v["purchases"] for v in shown["values"].values()) == pytest.approx(1.0)
    assert 0.0 <= shown["gap"] <= 1.0


# -- exposure parity ------------------------------------------------------------------------------

# Two customers, candidates 0, 1 (value 0: "A") and 2, 3 (value 1: "B"), best first.
CANDIDATES = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
SCORES = np.array([[4.0, 3.0, 2.0, 1.0], [4.0, 3.9, 1.0, 0.0]])
CODES = np.array([0, 0, 1, 1])


def test_parity_full_strength_worked_by_hand():
    # Both lists of 2 are all "A"; the purchases are half "B". Relevance (scores scaled to
    # [0, 1] per customer): customer 0 [1, 2/3, 1/3, 0], customer 1 [1, 0.97, 0.25, 0]. Two of
    # the four slots must go to "B": each customer swaps item 1 for item 2, in the model's order.
    lists = parity_rerank(CANDIDATES, SCORES, CODES, np.array([0.5, 0.5]), k=2)
    assert lists.tolist() == [[0, 2], [0, 2]]


def test_parity_half_strength_moves_the_cheapest_slot():
    # Aim: halfway from [1, 0] to [0.5, 0.5], so one slot of four goes to "B". Customer 0 gives
    # up less by swapping (2/3 - 1/3) than customer 1 (0.97 - 0.25): only customer 0's changes.
    lists = parity_rerank(CANDIDATES, SCORES, CODES, np.array([0.5, 0.5]), k=2, strength=0.5)
    assert lists.tolist() == [[0, 2], [0, 1]]


def test_parity_strength_zero_and_bad_strength():
    unchanged = parity_rerank(CANDIDATES, SCORES, CODES, np.array([0.5, 0.5]), k=2, strength=0)
    assert unchanged.tolist() == CANDIDATES[:, :2].tolist()
    with pytest.raises(Exception, match="between 0 and 1"):
        parity_rerank(CANDIDATES, SCORES, CODES, np.array([0.5, 0.5]), k=2, strength=1.5)
    with pytest.raises(Exception, match="at least k=5 candidates"):
        parity_rerank(CANDIDATES, SCORES, CODES, np.array([0.5, 0.5]), k=5)


def test_parity_keeps_padding_at_the_end():
    items = np.array([[0, 2, -1, -1]])
    scores = np.array([[2.0, 1.0, -np.inf, -np.inf]])
    lists = parity_rerank(items, scores, CODES, np.array([1.0, 0.0]), k=3)
    assert lists.tolist() == [[0, 2, -1]]  # nothing else to show, however far from the aim


@st.composite
def candidate_block(draw):
    """(items, scores, codes, target, k): rows of distinct candidates, best first, padded."""
    n_items, n_values = 12, 3
    k = draw(st.integers(1, 4))
    width = k + draw(st.integers(0, 5))
    n = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    items = np.full((n, width), -1)
    scores = np.full((n, width), -np.inf)
    for row in range(n):
        length = draw(st.integers(0, width))
        items[row, :length] = rng.choice(n_items, length, replace=False)
        scores[row, :length] = np.sort(rng.integers(0, 5, length))[::-1]  # ties happen
    codes = rng.integers(0, n_values, n_items)
    target = rng.dirichlet(np.ones(n_values))
    return items, scores, codes, target, k


def _gap(lists: np.ndarray, codes: np.ndarray, target: np.ndarray) -> float:
    shown = lists[lists >= 0]
    if shown.size == 0:
        return 0.0
    shares = np.bincount(codes[shown], minlength=len(target)) / shown.size
    return exposure_gap(shares, target)


@settings(max_examples=150, deadline=None)
@given(candidate_block())
def test_parity_invariants(block):
    items, scores, codes, target, k = block
    original = items[:, :k]
    # Strength 0 leaves every list as it is.
    assert (parity_rerank(items, scores, codes, target, k, strength=0.0) == original).all()
    lists = parity_rerank(items, scores, codes, target, k, strength=1.0)
    assert lists.shape == original.shape
    for row, chosen in enumerate(lists):
        shown = chosen[chosen >= 0]
        # The same number of items, all candidates, none twice, in the model's order.
        assert len(shown) == (original[row] >= 0).sum()
        positions = [list(items[row]).index(item) for item in shown]
        assert positions == sorted(set(positions))
        assert (chosen[len(shown) :] == -1).all()
    # At full strength the gap to the purchase mix never grows.
    assert _gap(lists, codes, target) <= _gap(original, codes, target) + 1e-12


def test_exposure_parity_reports_cost_and_gap():
    # Customer 0 bought item 1 (an "A"), customer 1 item 2 (a "B"); purchases are half and half.
    truth = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    per_user = ranking_metrics(CANDIDATES[:, :2], truth, 2)
    ranked = RankedLists(np.array([0, 1]), CANDIDATES, SCORES, truth, per_user)
    labels = np.array(["A", "A", "B", "B"], dtype=object)
    parity = exposure_parity(ranked, labels, np.array([1.0, 1.0, 1.0, 1.0]), k=2, n_boot=50)
    # Before: [0, 1] twice: customer 0 finds item 1 at rank 2, customer 1 finds nothing.
    # After: [0, 2] twice: customer 0 finds nothing, customer 1 finds item 2 at rank 2.
    assert parity["before"]["recall@2"] == pytest.approx(0.5)
    assert parity["after"]["recall@2"] == pytest.approx(0.5)
    assert parity["change"]["recall@2"] == pytest.approx(0.0)
    assert parity["change"]["ci95"]["recall@2"] == pytest.approx([-1.0, 1.0])  # paired diffs
    assert parity["before"]["exposure_gap"] == pytest.approx(0.5)
    assert parity["after"]["exposure_gap"] == pytest.approx(0.0)
    assert parity["lists_changed"] == 1.0
    assert parity["candidates"] == 4
    assert parity["exposure"]["B"] == {"purchases": 0.5, "slots_before": 0.0, "slots_after": 0.5}


# -- the runner keeps the lists -------------------------------------------------------------------


def test_kept_lists_are_the_evaluated_ones(synthetic_dataset: Dataset):
    train, test = synthetic_dataset.temporal_split(28)
    models = {"popularity": Popularity, "personal_frequency": PersonalFrequency}
    plain = evaluate_models(train, test, models, k=5, confidence=False)
    lists: dict[str, RankedLists] = {}
    kept = evaluate_models(train, test, models, k=5, confidence=False, lists=lists,
                           lists_width=30)  # fmt: skip
    for name, figures in plain.items():
        # A longer list begins with the shorter one: the figures do not move.
        assert without_timing(kept[name]) == without_timing(figures)
        ranked = lists[name]
        assert ranked.items.shape == (figures["customers"], 30) == ranked.scores.shape
        again = ranking_metrics(ranked.items[:, :5], ranked.truth, 5)
        np.testing.assert_allclose(again["recall"], ranked.per_user["recall"])
        assert np.nanmean(ranked.per_user["recall"]) == pytest.approx(figures["recall@5"])


def test_customer_attributes_skip_ids_and_consent(synthetic_dataset: Dataset):
    customers = synthetic_dataset.customers.assign(
        consent_marketing=np.arange(synthetic_dataset.n_customers) % 2 == 0
    )
    groups = customer_attributes(replace(synthetic_dataset, customers=customers))
    assert set(groups) == {"age_band", "income_band", "has_kids", "household_size"}
    assert all(len(labels) == synthetic_dataset.n_customers for labels in groups.values())


# -- the report -----------------------------------------------------------------------------------

AUDIT = {
    "model": "hybrid",
    "min_customers": 30,
    "purchases": "training data",
    "groups": {
        "age": {
            "groups": {
                "25-34": {"customers": 40, f"recall@{K}": 0.2, f"ndcg@{K}": 0.4,
                          "ci95": {f"recall@{K}": [0.15, 0.25], f"ndcg@{K}": [0.3, 0.5]}},
                "65+": {"customers": 50, f"recall@{K}": 0.1, f"ndcg@{K}": 0.3,
                        "ci95": {f"recall@{K}": [0.08, 0.12], f"ndcg@{K}": [0.25, 0.35]}},
                UNKNOWN: {"customers": 7, f"recall@{K}": 0.3, f"ndcg@{K}": 0.5,
                          "ci95": {f"recall@{K}": [0.2, 0.4], f"ndcg@{K}": [0.4, 0.6]}},
            },
            "worst_best_ratio": {f"recall@{K}": 0.5, f"ndcg@{K}": 0.75},
            "worst": {f"recall@{K}": "65+", f"ndcg@{K}": "65+"},
            "best": {f"recall@{K}": "25-34", f"ndcg@{K}": "25-34"},
            "compared": ["25-34", "65+"],
        }
    },
    "exposure": {
        "brand": {
            "values": {"National": {"slots": 0.6, "purchases": 0.7, "ratio": 0.6 / 0.7},
                       "Private": {"slots": 0.4, "purchases": 0.3, "ratio": 0.4 / 0.3}},
            "gap": 0.1,
        }
    },
    "parity": {
        "attribute": "brand", "strength": 1.0, "candidates": 50,
        "before": {f"recall@{K}": 0.15, f"ndcg@{K}": 0.3, "exposure_gap": 0.1},
        "after": {f"recall@{K}": 0.147, f"ndcg@{K}": 0.297, "exposure_gap": 0.001},
        "change": {f"recall@{K}": -0.003, f"ndcg@{K}": -0.003,
                   "ci95": {f"recall@{K}": [-0.004, -0.002], f"ndcg@{K}": [-0.005, -0.001]}},
        "relative_change": {f"recall@{K}": -0.02, f"ndcg@{K}": -0.01},
        "lists_changed": 0.45,
        "exposure": {"National": {"purchases": 0.7, "slots_before": 0.6, "slots_after": 0.7},
                     "Private": {"purchases": 0.3, "slots_before": 0.4, "slots_after": 0.3}},
    },
    "models": {
        "hybrid": {"worst_best_ratio": {"age": {f"recall@{K}": 0.5, f"ndcg@{K}": 0.75}},
                   "exposure_gap": {"brand": 0.1}},
        "popularity": {"worst_best_ratio": {"age": {f"recall@{K}": 0.9, f"ndcg@{K}": 0.8}},
                       "exposure_gap": {"brand": 0.4}},
    },
    "seconds": 0.5,
}  # fmt: skip
EVALUATION = {
    "split": {"kind": "temporal", "test_days": 28, "k": K, "exclude_purchased": False,
              "train": {"customers": 200}, "test": {"customers": 150}},
    "models": {
        "popularity": {f"recall@{K}": 0.05, f"ndcg@{K}": 0.1, "coverage": 0.01},
        "hybrid": {f"recall@{K}": 0.15, f"ndcg@{K}": 0.3, "coverage": 0.2},
    },
    "default": "hybrid",
}  # fmt: skip


def paragraphs(page: str) -> str:
    """The page's text, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_report_fairness_section_worked_by_hand(tmp_path: Path):
    page = write_report({**EVALUATION, "fairness": AUDIT}, tmp_path).read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", paragraphs(page))
    for png in ("fairness_groups.png", "exposure_brand.png", "exposure_parity.png"):
        assert f'<img src="{png}"' in page
        assert (tmp_path / png).read_bytes().startswith(PNG)
    assert (
        "By age, the lists of the worst-served group (65+, 50 customers) hold 10.0 % of what its "
        f"customers bought next (recall@{K}), 50 % of the best-served group's 20.0 % (25-34); "
        "their intervals do not overlap: a gap worth looking into."
    ) in text
    assert "differs from what customers buy by 10.0 % of the slots" in text
    assert "Most over-shown: Private (40.0 % of the slots, 30.0 % of purchases)" in text
    assert "most under-shown: National (60.0 % of the slots, 70.0 % of purchases)" in text
    assert "changes 45 % of the lists. The exposure gap goes from 10.0 % to 0.1 %" in text
    assert f"hold 2.0 % less of what customers bought next (recall@{K} 0.1500 to 0.1470)" in text
    assert f"rank it 1.0 % worse (NDCG@{K} 0.3000 to 0.2970)" in text
    assert f"the change in recall@{K} and ndcg@{K} is beyond chance" in text  # both below 0
    cells = dict(re.findall(r'data-group="([^"]+)" data-metric="recall@10">([^<]*)<', page))
    assert cells == {"25-34": "0.2000", "65+": "0.1000", UNKNOWN: "0.3000"}
    assert "unknown *" in page  # shown, not compared
    assert 'data-value="Private" data-figure="ratio">1.3333<' in page
    assert "<table id=fairness-models>" in page and "0.4000" in page  # popularity's gap


def test_report_without_fairness_says_how_to_get_it(tmp_path: Path):
    page = write_report(EVALUATION, tmp_path).read_text(encoding="utf-8")
    assert "tailor evaluate --fairness" in page
    assert "fairness_groups.png" not in page


# -- the CLI --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated shop big enough for groups of 30: 300 customers, 150 items, 120 days."""
    folder = tmp_path_factory.mktemp("fair")
    db = folder / "shop.duckdb"
    size = ["--customers", "300", "--items", "150", "--days", "120", "--json"]
    made = CliRunner().invoke(app, ["generate", str(folder / "files"), "--db", str(db), *size],
                              env={"TAILOR_CONFIG": ""})  # fmt: skip
    assert made.exit_code == 0, made.output
    return db


ENV = {"TAILOR_RECOMMENDERS": "popularity,recency_frequency", "TAILOR_CONFIG": ""}
EVALUATE = ["evaluate", "--split", "temporal", "--test-days", "28", "--k", str(K)]


@pytest.fixture(scope="module")
def audited(shop: Path) -> tuple[dict, dict, Path]:
    """(evaluate --json, evaluate --fairness --fair-exposure brand --report R --json, R)."""
    runner = CliRunner()
    report = shop.parent / "R"
    without = ["--report", str(shop.parent / "R0"), "--json"]  # the same run, no audit
    plain = runner.invoke(app, [*EVALUATE, "--db", str(shop), *without], env=ENV)
    assert plain.exit_code == 0, plain.output
    args = ["--fairness", "--fair-exposure", "brand", "--report", str(report), "--json"]
    fair = runner.invoke(app, [*EVALUATE, "--db", str(shop), *args], env=ENV)
    assert fair.exit_code == 0, fair.output
    return json.loads(plain.stdout), json.loads(fair.stdout), report


def test_cli_fairness_only_adds_to_the_json(audited):
    plain, fair, _ = audited
    assert set(plain) == {"split", "models", "default"}
    assert set(fair) == {"split", "models", "default", "fairness"}
    assert fair["split"] == plain["split"] and fair["default"] == plain["default"]
    for name, figures in plain["models"].items():
        assert without_timing(fair["models"][name]) == without_timing(figures)
    audit = fair["fairness"]
    assert audit["model"] == fair["default"]
    assert set(audit["models"]) == set(fair["models"])


def test_cli_groups_add_up_and_match_the_warehouse(audited, shop: Path):
    _, fair, _ = audited
    audit, k = fair["fairness"], f"recall@{K}"
    model = fair["models"][audit["model"]]
    assert set(audit["groups"]) == {"age_band", "income_band", "has_kids", "household_size"}
    # Customers with something to find in the test period, by age band, in plain SQL.
    as_of = fair["split"]["train"]["as_of"]
    with duckdb.connect(str(shop), read_only=True) as con:
        counts = dict(
            con.execute(
                "SELECT coalesce(c.age_band, 'unknown'), count(*) FROM (SELECT DISTINCT "
                "customer_id FROM events WHERE timestamp >= ? GROUP BY customer_id, item_id "
                f"HAVING {NET_WEIGHT} > 0) t LEFT JOIN customers c USING (customer_id) GROUP BY 1",
                [as_of],
            ).fetchall()
        )
    ages = audit["groups"]["age_band"]["groups"]
    assert {label: g["customers"] for label, g in ages.items()} == counts
    for quality in audit["groups"].values():
        groups = quality["groups"]
        assert sum(g["customers"] for g in groups.values()) == model["customers"]
        weighted = sum(g["customers"] * g[k] for g in groups.values())
        assert weighted / model["customers"] == pytest.approx(model[k])
        ratio = quality["worst_best_ratio"][k]
        compared = quality["compared"]
        assert all(groups[g]["customers"] >= 30 and g != UNKNOWN for g in compared)
        if len(compared) >= 2:
            values = [groups[g][k] for g in compared]
            assert ratio == pytest.approx(min(values) / max(values))
            assert 0 < ratio <= 1
            for g in groups.values():
                low, high = g["ci95"][k]
                assert low <= g[k] <= high


def test_cli_exposure_matches_the_warehouse(audited, shop: Path):
    _, fair, _ = audited
    audit = fair["fairness"]
    as_of = fair["split"]["train"]["as_of"]
    with duckdb.connect(str(shop), read_only=True) as con:
        bought = dict(
            con.execute(
                "SELECT i.brand, count(*) / sum(count(*)) OVER () FROM events e JOIN items i "
                "USING (item_id) WHERE e.event_type = 'purchase' AND e.timestamp < ? GROUP BY 1",
                [as_of],
            ).fetchall()
        )
    brand = audit["exposure"]["brand"]["values"]
    assert {v: f["purchases"] for v, f in brand.items()} == pytest.approx(bought)
    for shown in audit["exposure"].values():
        assert sum(f["slots"] for f in shown["values"].values()) == pytest.approx(1.0)
        assert sum(f["purchases"] for f in shown["values"].values()) == pytest.approx(1.0)
    parity = audit["parity"]
    model = fair["models"][audit["model"]]
    assert parity["attribute"] == "brand" and parity["candidates"] == 50
    assert parity["before"][f"recall@{K}"] == pytest.approx(model[f"recall@{K}"])
    assert parity["before"]["exposure_gap"] == pytest.approx(audit["exposure"]["brand"]["gap"])
    assert parity["after"]["exposure_gap"] < parity["before"]["exposure_gap"]
    assert parity["change"][f"ndcg@{K}"] == pytest.approx(
        parity["after"][f"ndcg@{K}"] - parity["before"][f"ndcg@{K}"]
    )


def test_cli_report_shows_the_audit(audited):
    _, fair, report = audited
    page = (report / "index.html").read_text(encoding="utf-8")
    for png in ("fairness_groups.png", "exposure_brand.png", "exposure_department.png",
                "exposure_parity.png"):  # fmt: skip
        assert (report / png).read_bytes().startswith(PNG)
    ages = fair["fairness"]["groups"]["age_band"]["groups"]
    for label, group in ages.items():
        cell = f'data-group="{label}" data-metric="recall@{K}">{group[f"recall@{K}"]:.4f}<'
        assert cell in page


def test_cli_fairness_tables_and_errors(shop: Path):
    runner = CliRunner()
    shown = runner.invoke(app, [*EVALUATE, "--db", str(shop), "--fairness"], env=ENV)
    assert shown.exit_code == 0, shown.output
    assert f"recall@{K} by customer group" in shown.stdout
    assert "exposure by brand" in shown.stdout and "exposure parity" not in shown.stdout
    bad = runner.invoke(app, [*EVALUATE, "--db", str(shop), "--fair-exposure", "colour"], env=ENV)
    assert bad.exit_code == 1 and "no attribute 'colour'" in bad.output
