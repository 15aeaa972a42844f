"""MMR diversity and the per-category cap, worked by hand."""

import numpy as np

from tailor.evaluate.metrics import intra_list_diversity
from tailor.recommend.rerank import rerank

# Items 0-5; categories: 0,1,2 are dairy (0), 3,4 bakery (1), 5 unknown (-1).
GROUPS = np.array([0, 0, 0, 1, 1, -1])
ITEMS = np.array([[0, 1, 2, 3, 4, 5]])
SCORES = np.array([[1.0, 0.9, 0.8, 0.5, 0.4, 0.1]], dtype=np.float32)


def test_no_diversity_keeps_the_ranking():
    items, scores = rerank(ITEMS, SCORES, GROUPS, k=4)
    assert items.tolist() == [[0, 1, 2, 3]]
    np.testing.assert_allclose(scores, [[1.0, 0.9, 0.8, 0.5]])


def test_full_diversity_takes_a_new_category_first():
    # relevance scaled to [0, 1]: 1, 8/9, 7/9, 4/9, 3/9, 0. With diversity 1 every repeat
    # costs 1 and relevance counts nothing: dairy 0, then bakery 3 (first new one by order),
    # then the unknown item 5 (never a repeat), then the best remaining (1).
    items, _ = rerank(ITEMS, SCORES, GROUPS, k=4, diversity=1.0)
    assert items.tolist() == [[0, 3, 5, 1]]


def test_half_diversity_trades_relevance_for_variety():
    # After item 0: candidates 1 and 2 (dairy) score 0.5*8/9 - 0.5 < 0, item 3 scores
    # 0.5 * 4/9 = 0.22, item 5 scores 0: item 3 next. Then dairy and bakery are both taken:
    # 1 -> 0.5*8/9-0.5 = -0.06, 5 -> 0.0: the unknown item comes third.
    items, _ = rerank(ITEMS, SCORES, GROUPS, k=3, diversity=0.5)
    assert items.tolist() == [[0, 3, 5]]


def test_at_most_n_per_category():
    items, _ = rerank(ITEMS, SCORES, GROUPS, k=5, max_per_group=1)
    # one dairy, one bakery, the unknown item; nothing else may fill the list
    assert items.tolist() == [[0, 3, 5, -1, -1]]


def test_diversity_raises_intra_list_diversity_on_random_lists():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 5, size=200)
    items = np.stack([rng.permutation(200)[:60] for _ in range(30)])
    scores = np.sort(rng.random((30, 60)).astype(np.float32), axis=1)[:, ::-1].copy()
    plain, _ = rerank(items, scores, groups, k=10)
    varied, _ = rerank(items, scores, groups, k=10, diversity=0.7)
    assert intra_list_diversity(varied, groups) > intra_list_diversity(plain, groups)
    # every list keeps k distinct items from its candidates
    for row, candidates in zip(varied, items, strict=True):
        assert len(set(row)) == 10 and set(row) <= set(candidates)
