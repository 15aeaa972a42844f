"""The two-stage top-k picks the same scores as a full sort."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.recommend.base import BLOCK, _top_k


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 8),
    m=st.integers(1, 12 * BLOCK * 8),
    k=st.integers(1, 40),
    levels=st.sampled_from([None, 3, 50]),
    holes=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_top_k_equals_a_full_sort(n, m, k, levels, holes, seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((n, m)).astype(np.float32)
    if levels:  # many ties
        scores = np.round(scores * levels).astype(np.float32)
    if holes:
        scores[:, rng.integers(0, m, size=m // 2)] = -np.inf
    k = min(k, m)
    got = _top_k(scores, k)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    assert got.shape == (n, k)
    # the same scores, best first, each column once
    assert np.array_equal(
        np.take_along_axis(scores, got, axis=1), np.take_along_axis(scores, expected, axis=1)
    )
    assert all(len(set(row)) == k for row in got.tolist())


def test_ties_go_to_the_lower_column_on_narrow_rows():
    scores = np.array([[1.0, 2.0, 2.0, 0.5]], dtype=np.float32)
    assert _top_k(scores, 2).tolist() == [[1, 2]]
