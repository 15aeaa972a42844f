"""Ranking and beyond-accuracy metrics: hand-worked answers, invariants, ranx on random lists."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tailor.evaluate.metrics import (
    RANKING_METRICS,
    bootstrap_ci,
    catalog_coverage,
    intra_list_diversity,
    item_popularity,
    novelty,
    ranking_metrics,
    split_recall,
    summarize,
)

# The 3-user, 6-item example used below, k = 3 (the 4th column lies beyond the cut-off).
#   user 0: relevant {0, 2, 5}, list [0, 1, 2 | 5]    hits at ranks 1 and 3
#   user 1: relevant {1},       list [4, 1, -1 | -1]  hit at rank 2, then padding
#   user 2: relevant {3, 4},    list [5, 0, 1 | 3]    no hit in the top 3 (3 is at rank 4)
TRUTH = sp.csr_matrix(
    np.array(
        [
            [1, 0, 1, 0, 0, 1],
            [0, 1, 0, 0, 0, 0],
            [0, 0, 0, 1, 1, 0],
        ]
    )
)
LISTS = np.array([[0, 1, 2, 5], [4, 1, -1, -1], [5, 0, 1, 3]])
LOG2_3 = math.log2(3)

EXPECTED = {
    # hits / k
    "precision": [2 / 3, 1 / 3, 0],
    # hits / R
    "recall": [2 / 3, 1 / 1, 0],
    # 2PR / (P + R): user 0 2(2/3)(2/3)/(4/3) = 2/3; user 1 2(1/3)(1)/(4/3) = 1/2
    "f1": [2 / 3, 1 / 2, 0],
    # user 0: DCG = 1/log2(2) + 1/log2(4) = 1.5, IDCG over min(3, 3) = 1 + 1/log2(3) + 1/2;
    # user 1: DCG = 1/log2(3), IDCG over min(1, 3) = 1
    "ndcg": [1.5 / (1.5 + 1 / LOG2_3), 1 / LOG2_3, 0],
    # user 0: (P@1 + P@3) / R = (1 + 2/3) / 3 = 5/9; user 1: P@2 / 1 = 1/2
    "map": [5 / 9, 1 / 2, 0],
    # 1 / rank of the first hit
    "mrr": [1, 1 / 2, 0],
    "hit_rate": [1, 1, 0],
}


def test_ranking_metrics_hand_example() -> None:
    result = ranking_metrics(LISTS, TRUTH, k=3)
    assert list(result) == list(RANKING_METRICS)
    for name, expected in EXPECTED.items():
        np.testing.assert_allclose(result[name], expected, rtol=0, atol=1e-12, err_msg=name)


def test_summarize_hand_example() -> None:
    summary = summarize(ranking_metrics(LISTS, TRUTH, k=3), k=3)
    assert list(summary) == [f"{name}@3" for name in RANKING_METRICS]
    # precision: (2/3 + 1/3 + 0) / 3 = 1/3; map: (5/9 + 1/2 + 0) / 3 = 19/54
    assert summary["precision@3"] == pytest.approx(1 / 3, abs=1e-12)
    assert summary["map@3"] == pytest.approx(19 / 54, abs=1e-12)
    assert summary["hit_rate@3"] == pytest.approx(2 / 3, abs=1e-12)


def test_user_without_truth_is_nan_and_left_out_of_summary() -> None:
    # A 4th user with no relevant item: NaN everywhere, and the means stay those of the 3.
    truth = sp.vstack([TRUTH, sp.csr_matrix((1, 6))]).tocsr()
    lists = np.vstack([LISTS, [[0, 1, 2, 3]]])
    result = ranking_metrics(lists, truth, k=3)
    for name in RANKING_METRICS:
        assert np.isnan(result[name][3]), name
        np.testing.assert_allclose(result[name][:3], EXPECTED[name], atol=1e-12)
    assert summarize(result, 3) == pytest.approx(summarize(ranking_metrics(LISTS, TRUTH, 3), 3))


def test_summary_of_no_truth_at_all_is_nan() -> None:
    result = ranking_metrics(np.array([[0, 1]]), sp.csr_matrix((1, 3)), k=2)
    assert all(math.isnan(value) for value in summarize(result, 2).values())


def test_padding_is_a_miss() -> None:
    # relevant {3}, list [-1, 3, -1]: one hit at rank 2; precision 1/3 (padding counts in k),
    # mrr 1/2, ndcg (1/log2(3)) / 1, map (1/2) / 1.
    result = ranking_metrics(np.array([[-1, 3, -1]]), sp.csr_matrix([[0, 0, 0, 1]]), k=3)
    assert result["precision"][0] == pytest.approx(1 / 3)
    assert result["recall"][0] == pytest.approx(1)
    assert result["mrr"][0] == pytest.approx(1 / 2)
    assert result["ndcg"][0] == pytest.approx(1 / LOG2_3)
    assert result["map"][0] == pytest.approx(1 / 2)


def test_duplicates_count_once() -> None:
    # relevant {1, 2}, list [1, 1, 2]: the second 1 is a miss, so hits at ranks 1 and 3.
    # precision 2/3 (not 1), recall 2/2 (not 3/2), map (1 + 2/3) / 2 = 5/6,
    # ndcg (1 + 1/2) / (1 + 1/log2(3)).
    result = ranking_metrics(np.array([[1, 1, 2]]), sp.csr_matrix([[0, 1, 1]]), k=3)
    assert result["precision"][0] == pytest.approx(2 / 3)
    assert result["recall"][0] == pytest.approx(1)
    assert result["map"][0] == pytest.approx(5 / 6)
    assert result["ndcg"][0] == pytest.approx(1.5 / (1 + 1 / LOG2_3))


def test_map_divides_by_all_relevant_items_like_ranx() -> None:
    # relevant {0..4} (R = 5 > k = 3), a perfect list [0, 1, 2]: (1 + 1 + 1) / R = 3/5,
    # not 1 as with Spark's min(R, k) divisor; ndcg's IDCG does stop at k, so ndcg = 1.
    result = ranking_metrics(np.array([[0, 1, 2]]), sp.csr_matrix(np.ones((1, 5))), k=3)
    assert result["map"][0] == pytest.approx(3 / 5)
    assert result["ndcg"][0] == pytest.approx(1)
    assert result["recall"][0] == pytest.approx(3 / 5)


def test_truth_values_only_mark_relevance() -> None:
    # Weights are not grades: 0.2 and 7 are both just relevant; an explicit 0 is not.
    truth = sp.csr_matrix((np.array([0.2, 7.0, 0.0]), ([0, 0, 0], [0, 1, 2])), shape=(1, 3))
    result = ranking_metrics(np.array([[2, 1, 0]]), truth, k=3)
    assert result["recall"][0] == 1
    assert result["mrr"][0] == pytest.approx(1 / 2)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="fewer than k"):
        ranking_metrics(LISTS, TRUTH, k=5)
    with pytest.raises(ValueError, match="rows"):
        ranking_metrics(LISTS[:2], TRUTH, k=3)
    with pytest.raises(ValueError, match="outside"):
        ranking_metrics(np.array([[6, 0, 1]] * 3), TRUTH, k=3)
    with pytest.raises(ValueError, match="integer"):
        ranking_metrics(LISTS.astype(float), TRUTH, k=3)


# -- invariants ---------------------------------------------------------------------------------


@st.composite
def ranking_inputs(draw: st.DrawFn, distinct: bool = False):
    """(lists, relevant as a dense bool array, k). With distinct, each list shows an item at
    most once (padding anywhere); otherwise any entries, padding and repeats included."""
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 10))
    relevant = draw(arrays(np.bool_, (n_users, n_items)))
    if distinct:
        width = draw(st.integers(1, n_items))
        rows = [draw(st.permutations(range(n_items)))[:width] for _ in range(n_users)]
        lists = np.array(rows, dtype=np.int64).reshape(n_users, width)
        padding = draw(arrays(np.bool_, lists.shape))
        lists[padding] = -1
    else:
        width = draw(st.integers(1, 8))
        lists = draw(arrays(np.int64, (n_users, width), elements=st.integers(-1, n_items - 1)))
    k = draw(st.integers(1, width))
    return lists, relevant, k


def _equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray], names=RANKING_METRICS) -> None:
    for name in names:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-12, err_msg=name)


@settings(max_examples=200, deadline=None)
@given(ranking_inputs())
def test_every_metric_is_within_0_and_1(case) -> None:
    lists, relevant, k = case
    result = ranking_metrics(lists, sp.csr_matrix(relevant), k)
    has_truth = relevant.any(axis=1)
    for name, values in result.items():
        assert np.isnan(values[~has_truth]).all(), name
        assert ((values[has_truth] >= 0) & (values[has_truth] <= 1 + 1e-12)).all(), name


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.bool_, st.tuples(st.integers(1, 6), st.integers(1, 10))),
    st.integers(1, 10),
    st.integers(0, 2**32 - 1),
)
def test_a_perfect_ranking_scores_1(relevant, k, seed) -> None:
    # Each list: the relevant items first (shuffled), then the others (shuffled).
    n_users, n_items = relevant.shape
    k = min(k, n_items)
    rng = np.random.default_rng(seed)
    key = np.where(relevant, 0.0, 1.0) + rng.random(relevant.shape) / 2
    lists = np.argsort(key, axis=1)
    result = ranking_metrics(lists, sp.csr_matrix(relevant), k)
    n_relevant = relevant.sum(axis=1)
    has, short = n_relevant > 0, (n_relevant > 0) & (n_relevant <= k)
    for name in ("ndcg", "mrr", "hit_rate"):
        np.testing.assert_allclose(result[name][has], 1, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(result["recall"][short], 1, atol=1e-12)
    np.testing.assert_allclose(result["map"][short], 1, atol=1e-12)
    # More relevant items than k: every shown item is a hit, and map's divisor R shows.
    long = n_relevant > k
    np.testing.assert_allclose(result["precision"][long], 1, atol=1e-12)
    np.testing.assert_allclose(result["map"][long], k / n_relevant[long], atol=1e-12)


def _shuffle_where(lists: np.ndarray, where: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row's entries at ``where`` permuted among those positions."""
    shuffled = lists.copy()
    for row in range(len(lists)):
        cols = np.flatnonzero(where[row])
        shuffled[row, cols] = lists[row, rng.permutation(cols)]
    return shuffled


@settings(max_examples=200, deadline=None)
@given(ranking_inputs(distinct=True), st.integers(0, 2**32 - 1))
def test_moving_misses_among_misses_changes_nothing(case, seed) -> None:
    lists, relevant, k = case
    truth = sp.csr_matrix(relevant)
    hit = (lists >= 0) & np.take_along_axis(relevant, np.maximum(lists, 0), axis=1)
    shuffled = _shuffle_where(lists, ~hit, np.random.default_rng(seed))
    _equal(ranking_metrics(lists, truth, k), ranking_metrics(shuffled, truth, k))


@settings(max_examples=200, deadline=None)
@given(ranking_inputs(distinct=True), st.integers(0, 2**32 - 1))
def test_reordering_hits_or_the_top_k_keeps_set_metrics(case, seed) -> None:
    lists, relevant, k = case
    truth = sp.csr_matrix(relevant)
    rng = np.random.default_rng(seed)
    before = ranking_metrics(lists, truth, k)
    hit = (lists >= 0) & np.take_along_axis(relevant, np.maximum(lists, 0), axis=1)
    # Relevant items swapping places among the hit positions: the hit pattern is unchanged.
    _equal(before, ranking_metrics(_shuffle_where(lists, hit, rng), truth, k))
    # Any reordering inside the top k keeps the set shown, so the set-based metrics.
    top = np.zeros(lists.shape, dtype=bool)
    top[:, :k] = True
    after = ranking_metrics(_shuffle_where(lists, top, rng), truth, k)
    _equal(before, after, ("precision", "recall", "f1", "hit_rate"))


@settings(max_examples=100, deadline=None)
@given(ranking_inputs(), st.integers(0, 2**32 - 1))
def test_shuffling_users_permutes_the_results(case, seed) -> None:
    lists, relevant, k = case
    order = np.random.default_rng(seed).permutation(len(lists))
    before = ranking_metrics(lists, sp.csr_matrix(relevant), k)
    after = ranking_metrics(lists[order], sp.csr_matrix(relevant[order]), k)
    for name in RANKING_METRICS:
        np.testing.assert_array_equal(after[name], before[name][order], err_msg=name)


# -- a second implementation --------------------------------------------------------------------


@pytest.mark.slow  # ranx compiles its metrics with numba on first use
@pytest.mark.parametrize("k", [5, 10, 20])
def test_matches_ranx_on_random_lists(k: int) -> None:
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(k)
    n_users, n_items, width = 200, 50, 25
    relevant = rng.random((n_users, n_items)) < rng.uniform(0.0, 0.3, size=(n_users, 1))
    # Distinct items in each list, of 1..width items and padding after (ranx has no padding or
    # repeats; lists shorter than k are the case where precision's divisor k matters).
    lists = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :width]
    length = rng.integers(1, width + 1, size=n_users)
    lists[np.arange(width) >= length[:, None]] = -1
    result = ranking_metrics(lists, sp.csr_matrix(relevant), k)

    users = np.flatnonzero(relevant.any(axis=1))
    assert 0 < len(users) < n_users  # both kinds of user are in the sample
    assert (relevant.sum(axis=1) > k).any() or k == 20  # where map's divisor R shows
    qrels = ranx.Qrels({f"u{u}": {f"i{i}": 1 for i in np.flatnonzero(relevant[u])} for u in users})
    run = ranx.Run(
        {
            f"u{u}": {
                f"i{item}": float(width - rank) for rank, item in enumerate(lists[u]) if item >= 0
            }
            for u in users
        }
    )
    # ranx's metric names are ours; its numba kernels warn about an unsigned-to-signed cast.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranx.evaluate(qrels, run, [f"{name}@{k}" for name in RANKING_METRICS])
    for name in RANKING_METRICS:
        expected = np.array([run.scores[f"{name}@{k}"][f"u{u}"] for u in users])
        np.testing.assert_allclose(result[name][users], expected, rtol=0, atol=1e-9, err_msg=name)
    missing = np.setdiff1d(np.arange(n_users), users)
    assert all(np.isnan(result[name][missing]).all() for name in RANKING_METRICS)


# -- beyond accuracy ----------------------------------------------------------------------------


def test_catalog_coverage_hand_example() -> None:
    # All 4 columns show items 0, 1, 2, 5, 4, 3: the whole catalogue of 6.
    assert catalog_coverage(LISTS, 6) == pytest.approx(1)
    # The top 2 show 0, 1, 4, 5 (padding is no item): 4 of 6.
    assert catalog_coverage(LISTS[:, :2], 6) == pytest.approx(4 / 6)
    # Against a catalogue of 12: 6 of 12.
    assert catalog_coverage(LISTS, 12) == pytest.approx(1 / 2)
    assert catalog_coverage(np.full((2, 3), -1), 6) == 0


def test_intra_list_diversity_hand_example() -> None:
    # groups: items 0, 1 in group 0; items 2, 3 in group 1; items 4, 5 unknown (-1).
    groups = np.array([0, 0, 1, 1, -1, -1])
    lists = np.array(
        [
            [0, 1, 2, -1],  # groups 0, 0, 1: pairs (0,1) same, (0,2) and (1,2) differ -> 2/3
            [4, 5, 0, 0],  # distinct 4, 5, 0; unknowns are groups of their own -> 3/3 = 1
            [3, -1, -1, -1],  # one item: skipped
            [2, 3, 2, -1],  # distinct 2, 3, both group 1 -> 0/1 = 0
        ]
    )
    assert intra_list_diversity(lists, groups) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert math.isnan(intra_list_diversity(lists[2:3], groups))


def test_novelty_hand_example() -> None:
    # 4 training users: item 0 bought by all 4 (p = 1, 0 bits), item 1 by 2 (p = 1/2, 1 bit),
    # item 2 by 1 (p = 1/4, 2 bits), item 3 by none (p floored at 1/4, 2 bits).
    history = sp.csr_matrix(
        np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=float)
    )
    popularity = item_popularity(history)
    np.testing.assert_allclose(popularity, [1, 1 / 2, 1 / 4, 1 / 4])
    # Lists show 0, 1 and 2, 3 (the repeated 2 counts once): (0 + 1 + 2 + 2) / 4 = 1.25 bits.
    lists = np.array([[0, 1, -1], [2, 3, 2]])
    assert novelty(lists, popularity) == pytest.approx(1.25)
    # Raw shares with the floor applied here give the same.
    raw = np.array([1, 1 / 2, 1 / 4, 0])
    assert novelty(lists, raw, n_users=4) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="n_users"):
        novelty(lists, raw)


def test_split_recall_hand_example() -> None:
    # Training history: user 0 had {0, 1}, user 1 nothing, user 2 {3, 4}.
    history = sp.csr_matrix(
        np.array([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0]], dtype=float)
    )
    repeat, explore = split_recall(LISTS, TRUTH, history, k=3)
    # user 0: truth {0, 2, 5} = repeat {0} + new {2, 5}; top 3 [0, 1, 2] -> 1/1 and 1/2.
    # user 1: truth {1} is all new; top 3 [4, 1, -1] -> repeat NaN, explore 1/1.
    # user 2: truth {3, 4} is all repeat; top 3 [5, 0, 1] -> 0/2, explore NaN.
    np.testing.assert_allclose(repeat, [1, np.nan, 0])
    np.testing.assert_allclose(explore, [1 / 2, 1, np.nan])


def test_bootstrap_ci_contains_the_mean_and_narrows_with_more_users() -> None:
    rng = np.random.default_rng(1)
    few, many = rng.random(50), rng.random(5000)
    low, high = bootstrap_ci(few)
    assert low < few.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * few.std() / math.sqrt(50), rel=0.2)
    low_many, high_many = bootstrap_ci(many)
    assert low_many < many.mean() < high_many
    assert high_many - low_many < (high - low) / 5  # ~ 1 / sqrt(100)


def test_bootstrap_ci_is_reproducible_and_ignores_nan() -> None:
    values = np.random.default_rng(2).random(300)
    assert bootstrap_ci(values, random_state=7) == bootstrap_ci(values, random_state=7)
    assert bootstrap_ci(values, random_state=7) != bootstrap_ci(values, random_state=8)
    with_nan = np.concatenate([values, [np.nan] * 20])
    assert bootstrap_ci(with_nan, random_state=7) == bootstrap_ci(values, random_state=7)
    assert all(math.isnan(bound) for bound in bootstrap_ci(np.array([np.nan])))
