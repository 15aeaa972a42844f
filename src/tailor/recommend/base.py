"""One interface for every recommender (after ``implicit.RecommenderBase`` and scikit-learn).

A recommender is fitted on a :class:`~tailor.dataset.Dataset` and scores every item for a batch
of customers (``_score``); this base class does the rest the same way for all of them: cold start
for customers it does not know, excluding what a customer bought, business filters, the top k,
and a reason for every recommendation. Hyper-parameters go in ``__init__`` and are stored
unchanged; learned state ends in ``_``.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.privacy.crypto import read_build_file, writing
from tailor.recommend.rerank import item_groups, rerank

BATCH = 512  # customers scored at once: bounds the dense (batch x items) score block
BLOCK = 64  # columns per block in the two-stage top-k (see _top_k)
RECOMMEND_COLUMNS = ["customer_id", "rank", "item_id", "score", "reason"]


class Recommender(ABC):
    """Base of every recommender: ``fit(dataset)`` then ``recommend(customers, k)``."""

    name = "recommender"
    customer_state: tuple[str, ...] = ()
    """Learned attributes with one row per customer (the base's own history_ and negative_
    aside): :meth:`forget` drops the rows of forgotten customers from them."""
    fold_out = "exact"
    """How :meth:`forget` removes a customer's influence on what the model learned from
    everyone: ``"exact"`` (dropping their rows and fitting again what depends on all customers
    gives the model fitted without them) or ``"retrain"`` (learned weights such as factors or a
    ranker have no exact fold-out: the customer's own rows go at once, their share of the
    shared weights at the next build)."""

    # -- to implement -----------------------------------------------------------------------------

    @abstractmethod
    def _fit(self, dataset: Dataset) -> None:
        """Learn from ``dataset``; state goes in attributes ending in ``_``."""

    @abstractmethod
    def _score(self, rows: np.ndarray) -> np.ndarray:
        """Scores of every item for known customer rows.

        Parameters
        ----------
        rows : ndarray of shape (n,)
            Customer rows of the fitted dataset (all >= 0).

        Returns
        -------
        ndarray of shape (n, n_items), float32; higher is better, -inf = never recommend.
        """

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """A human reason per recommended item; ``items`` and ``scores`` are (n, k)."""
        return np.full(items.shape, "recommended for you", dtype=object)

    # -- the shared machinery ---------------------------------------------------------------------

    def fit(self, dataset: Dataset) -> Self:
        """Fit on ``dataset`` and return self."""
        self.dataset_ = dataset
        self.history_ = (dataset.interactions > 0).astype(np.float32).tocsr()
        self.now_ = _now(dataset)
        self.cold_start_ = _recent_popularity(dataset, self.now_)
        self.negative_ = negative_pairs(dataset.events, dataset.n_customers, dataset.n_items)
        self.unavailable_ = unavailable_items(dataset.items)
        self._fit(dataset)
        return self

    def _forget(self, dataset: Dataset, keep: np.ndarray) -> None:
        """Recompute what depends on all customers after :meth:`forget` dropped rows. By
        default: fit again where that is exact (cheap models whose state is counts); where it
        is not, the shared weights stay until the next build."""
        if self.fold_out == "exact":
            self._fit(dataset)

    def forget(self, dataset: Dataset, keep: np.ndarray) -> Self:
        """Fold customers out of the fitted model (erasure).

        ``dataset`` is the fitted dataset without them (``Dataset.without_customers(keep)``);
        ``keep`` marks the fitted rows that stay. The moment lists are for (``now_``) stays.
        See :attr:`fold_out` for what this removes.
        """
        self._check_fitted()
        keep = np.asarray(keep, dtype=bool)
        self.dataset_ = dataset
        self.history_ = self.history_[keep]
        self.negative_ = self.negative_[keep]
        self._item_customers_cache = None
        self.cold_start_ = _recent_popularity(dataset, self.now_)
        for name in self.customer_state:
            setattr(self, name, getattr(self, name)[keep])
        self._forget(dataset, keep)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "dataset_"):
            raise TailorError(f"{self.name} is not fitted; call fit(dataset) first")

    def recommend_rows(
        self,
        rows: np.ndarray,
        k: int = 10,
        exclude_purchased: bool = False,
        allowed: np.ndarray | None = None,
        recent: RecentEvents | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` item columns and scores for customer rows (``-1`` = unknown customer).

        ``recent`` holds events newer than the fitted dataset, one matrix row per entry of
        ``rows`` (see :class:`RecentEvents`).

        Returns
        -------
        items : ndarray of shape (n, k), int64, -1 where fewer than k items qualify
        scores : ndarray of shape (n, k), float32
        """
        self._check_fitted()
        rows = np.asarray(rows, dtype=np.int64)
        n_items = self.dataset_.n_items
        out_items = np.full((len(rows), k), -1, dtype=np.int64)
        out_scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            scores = np.empty((len(batch), n_items), dtype=np.float32)
            known = batch >= 0
            if known.any():
                scores[known] = self._score(batch[known])
            scores[~known] = self.cold_start_
            fresh = None if recent is None else recent.slice(start, start + len(batch))
            if fresh is not None:
                # A newcomer who has just shown interest gets what goes with it, not the
                # cold-start list.
                session = ~known & (fresh.positive.getnnz(axis=1) > 0)
                if session.any():
                    scores[session] = self._session_scores(fresh.positive[session])
            if exclude_purchased and known.any():
                _mask_history(scores, self.history_, batch)
            if exclude_purchased and fresh is not None:
                _mask_rows(scores, fresh.positive)
            negative = getattr(self, "negative_", None)  # builds before feedback had none
            if known.any() and negative is not None:
                _mask_history(scores, negative, batch)
            if fresh is not None:
                _mask_rows(scores, fresh.negative)
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            unavailable = getattr(self, "unavailable_", None)  # builds before stock had none
            if unavailable is not None and unavailable.any():
                scores[:, unavailable] = -np.inf
            top = _top_k(scores, min(k, n_items))  # a catalog smaller than k leaves padding
            top_scores = np.take_along_axis(scores, top, axis=1)
            top[~np.isfinite(top_scores)] = -1
            out_items[start : start + BATCH, : top.shape[1]] = top
            out_scores[start : start + BATCH, : top.shape[1]] = top_scores
        return out_items, out_scores

    def recommend(
        self,
        customers: Iterable[Any],
        k: int = 10,
        exclude_purchased: bool = False,
        filters: Mapping[str, Any] | None = None,
        diversity: float = 0.0,
        max_per_category: int | None = None,
        recent: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Top ``k`` items per customer, with a reason each.

        Parameters
        ----------
        customers : iterable of customer ids
            Ids the dataset does not know get the cold-start list (recent popularity).
        exclude_purchased : bool
            Leave out items the customer interacted with before.
        filters : mapping, optional
            ``{"exclude_items": [...], ATTRIBUTE: [allowed values], "exclude_ATTRIBUTE":
            [values], ...}`` over item attributes, e.g. ``{"department": ["DAIRY"]}`` or
            ``{"exclude_category": ["TOBACCO"]}``. Items the catalogue marks as not for sale
            (see :func:`unavailable_items`) are never recommended.
        diversity : float in [0, 1]
            MMR re-ranking for variety across categories; 0 keeps the ranking.
        max_per_category : int, optional
            At most this many items of one category in a list.
        recent : DataFrame, optional
            Events newer than the fitted dataset (columns customer_id, item_id, event_type and,
            for ratings, value), which change the lists at once: with ``exclude_purchased`` what
            a customer just bought, carted or viewed is left out; negative feedback
            (``not_interested``, a rating of 2 or less) always removes the item; and a customer
            the dataset does not know gets what goes with their recent items instead of the
            cold-start list. Items the dataset does not know are ignored.

        Returns
        -------
        DataFrame with columns customer_id, rank (1-based), item_id, score, reason.
        """
        self._check_fitted()
        ids = np.asarray(list(customers) if not isinstance(customers, np.ndarray) else customers)
        rows = self.dataset_.customer_index(ids)
        if not 0.0 <= diversity <= 1.0:
            raise TailorError(f"diversity {diversity}: use a value between 0 and 1")
        if max_per_category is not None and max_per_category < 1:
            raise TailorError("max_per_category must be at least 1")
        allowed = self._allowed(filters)
        fresh = None if recent is None else RecentEvents.of(self.dataset_, ids, recent)
        if diversity > 0 or max_per_category is not None:
            # Re-rank a longer candidate list for variety (see tailor.recommend.rerank).
            items, scores = self.recommend_rows(
                rows, max(5 * k, 50), exclude_purchased, allowed, fresh
            )
            items, scores = rerank(
                items, scores, item_groups(self.dataset_), k, diversity, max_per_category
            )
        else:
            items, scores = self.recommend_rows(rows, k, exclude_purchased, allowed, fresh)
        reasons = np.full(items.shape, "", dtype=object)
        known = rows >= 0
        if known.any():
            reasons[known] = self._reasons(rows[known], items[known], scores[known])
        session = np.zeros(len(rows), dtype=bool)
        if fresh is not None:
            session = ~known & (fresh.positive.getnnz(axis=1) > 0)
            if session.any():
                reasons[session] = self._session_reasons(fresh.positive[session], items[session])
        cold = ~known & ~session
        if cold.any():
            reasons[cold] = _cold_start_reason(self.dataset_, self.cold_start_, items[cold])
        # Known customers are named by the dataset's own ids (an integer id given as "12" is 12).
        named = ids.astype(object)
        named[known] = self.dataset_.customer_ids[rows[known]]
        return _frame(named, items, scores, reasons, self.dataset_.item_ids)

    def _allowed(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        if not filters:
            return None
        ds = self.dataset_
        allowed = np.ones(ds.n_items, dtype=bool)
        for key, values in filters.items():
            if key == "exclude_items":
                rows = ds.item_index(list(values))
                allowed[rows[rows >= 0]] = False
            elif key.startswith("exclude_") and key[8:] in ds.items.columns:
                allowed &= ~ds.items[key[8:]].isin(list(values)).to_numpy()
            elif key in ds.items.columns:
                allowed &= ds.items[key].isin(list(values)).to_numpy()
            else:
                raise TailorError(
                    f"filter {key!r}: not an item attribute (known: "
                    f"{', '.join(map(str, ds.items.columns))})"
                )
        return allowed

    def recommend_session(
        self, items: Iterable[Any], k: int = 10, exclude_session: bool = True
    ) -> pd.DataFrame:
        """A list for an anonymous visitor from the items in their session alone: what the
        dataset's customers most often bought with them (cosine over customers, summed over
        the session's items). Items the dataset does not know are ignored; with none known the
        list is the cold-start list.

        Returns a DataFrame with columns rank, item_id, score, reason.
        """
        self._check_fitted()
        ds = self.dataset_
        cols = ds.item_index(list(items))
        cols = np.unique(cols[cols >= 0])
        session = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), (np.zeros(len(cols), dtype=np.int64), cols)),
            shape=(1, ds.n_items),
        )
        known = len(cols) > 0
        scores = self._session_scores(session) if known else self.cold_start_[None, :].copy()
        if exclude_session and len(cols):
            scores[0, cols] = -np.inf
        unavailable = getattr(self, "unavailable_", None)
        if unavailable is not None:
            scores[0, unavailable] = -np.inf
        top = _top_k(scores, min(k, ds.n_items))
        top_scores = np.take_along_axis(scores, top, axis=1)
        keep = np.isfinite(top_scores[0])
        top, top_scores = top[:, keep], top_scores[:, keep]
        if len(cols):
            reasons = self._session_reasons(session, top)[0]
        else:
            reasons = _cold_start_reason(ds, self.cold_start_, top)[0]
        return pd.DataFrame(
            {
                "rank": np.arange(1, top.shape[1] + 1),
                "item_id": ds.item_ids[top[0]],
                "score": top_scores[0].astype(np.float64),
                "reason": reasons,
            }
        )

    def _session_scores(self, session: sp.csr_matrix) -> np.ndarray:
        """Scores of every item for sessions (rows of item indicators): the summed cosine
        similarity, over the dataset's customers, of each item to the session's items; items
        nobody bought with them follow, in cold-start order.

        Never forms the items x items matrix: (session / norms) @ items x customers gives each
        session's customers, and that @ customers x items the co-purchase counts.
        """
        matrix = self._item_customers()
        inverse = 1.0 / np.maximum(self._item_norms(), 1e-9)
        weighted = session.multiply(inverse[None, :]).tocsr()
        reach = weighted @ matrix
        scores = np.asarray((reach @ matrix.T).todense(), dtype=np.float32) * inverse[None, :]
        floor = self._popularity_tie() * 1e-6
        return (scores + floor[None, :]).astype(np.float32)

    def _session_reasons(self, session: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """ "often bought with Milk (12 customers bought both)": the session item most bought
        with each recommended one."""
        ds = self.dataset_
        matrix = self._item_customers()
        reasons = np.full(items.shape, "", dtype=object)
        for r in range(items.shape[0]):  # sessions are few and short: formatting only
            cols = session[r].indices
            valid = items[r] >= 0
            if not len(cols) or not valid.any():
                continue
            together = (matrix[items[r, valid]] @ matrix[cols].T).toarray()
            best = together.argmax(axis=1)
            names = describe_items(ds, cols)
            reasons[r, valid] = [
                f"often bought with {names[b]} ({customers(int(together[i, b]))} bought both)"
                if together[i, b] > 0
                else "popular now"
                for i, b in enumerate(best)
            ]
        return reasons

    def _popularity_tie(self) -> np.ndarray:
        """Recent popularity scaled to [0, 1]: added with a small weight, it orders the items a
        recommender scores alike, the most bought lately first."""
        return self.cold_start_ / max(float(self.cold_start_.max()), 1.0)

    def _item_customers(self) -> sp.csr_matrix:
        """Items x customers indicator matrix (cached)."""
        if getattr(self, "_item_customers_cache", None) is None:
            self._item_customers_cache = self.history_.T.tocsr()
        return self._item_customers_cache

    def _item_norms(self) -> np.ndarray:
        matrix = self._item_customers()
        return np.sqrt(np.asarray(matrix.sum(axis=1)).ravel())

    def similar_items(self, items: Iterable[Any], k: int = 10) -> pd.DataFrame:
        """Items most often bought by the same customers (cosine over customers), per item.

        Returns a DataFrame with columns item_id, rank, similar_item_id, score, reason.
        """
        self._check_fitted()
        ds = self.dataset_
        ids = np.asarray(list(items))
        cols = ds.item_index(ids)
        if (cols < 0).any():
            raise TailorError(f"unknown item {ids[cols < 0].tolist()[0]!r}")
        matrix, norms = self._item_customers(), self._item_norms()
        together = (matrix[cols] @ matrix.T).toarray().astype(np.float32)
        sims = together / np.maximum(norms[cols, None] * norms[None, :], 1e-9)
        sims[np.arange(len(cols)), cols] = -np.inf
        sims[together <= 0] = -np.inf
        top = _top_k(sims, min(k, ds.n_items))
        scores = np.take_along_axis(sims, top, axis=1)
        shared = np.take_along_axis(together, top, axis=1).astype(int)
        keep = np.isfinite(scores)
        n_kept = keep.sum(axis=1)
        return pd.DataFrame(
            {
                "item_id": np.repeat(ds.item_ids[cols], n_kept),
                "rank": np.concatenate([np.arange(1, n + 1) for n in n_kept]) if len(cols) else [],
                "similar_item_id": ds.item_ids[top[keep]],
                "score": scores[keep].astype(np.float64),
                "reason": [f"{customers(c)} bought both" for c in shared[keep]],
            }
        )

    def __getstate__(self) -> dict[str, Any]:
        # The dataset is saved once with the build, not once per model.
        state = self.__dict__.copy()
        state.pop("dataset_", None)
        state.pop("_item_customers_cache", None)
        return state

    def save(self, path: str | Path) -> None:
        """Pickle the fitted model, without its dataset (see :meth:`load`), through
        :mod:`tailor.privacy.crypto` (encrypted when a key is configured)."""
        with writing(path) as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(path: str | Path, dataset: Dataset) -> Recommender:
        """A model saved by :meth:`save`, re-attached to the dataset it was fitted on."""
        model = pickle.loads(read_build_file(path))
        model._attach(dataset)
        return model

    def _attach(self, dataset: Dataset) -> None:
        """Give a loaded model back its dataset (a model made of models gives it to each)."""
        self.dataset_ = dataset


def _now(dataset: Dataset) -> pd.Timestamp:
    """The moment recommendations are for: the dataset's cut, or just after its last event."""
    if dataset.as_of is not None:
        return dataset.as_of
    if len(dataset.events):
        return dataset.events["timestamp"].max()
    return pd.Timestamp.now()


def _recent_popularity(dataset: Dataset, now: pd.Timestamp, days: int = 28) -> np.ndarray:
    """Distinct buyers per item in the last ``days`` (ties broken by all-time buyers)."""
    return _popularity(dataset, now, days)[1]


def _popularity(dataset: Dataset, now: pd.Timestamp, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct buyers per item in the last ``days``, those counts plus all-time buyers scaled
    below 1 as a tie-break: the popularity score, float32)."""
    ev = dataset.events
    positive = ev["weight"].to_numpy() > 0
    recent = positive & (ev["timestamp"].to_numpy() >= np.datetime64(now - pd.Timedelta(days=days)))
    buyers = _distinct_buyers(ev, recent, dataset.n_items)
    overall = _distinct_buyers(ev, positive, dataset.n_items)
    return buyers, (buyers + overall / (overall.max() + 1.0)).astype(np.float32)


def _distinct_buyers(events: pd.DataFrame, mask: np.ndarray, n_items: int) -> np.ndarray:
    pairs = events.loc[mask, ["customer", "item"]].drop_duplicates()
    return np.bincount(pairs["item"].to_numpy(), minlength=n_items).astype(np.float64)


STOCK_FLAGS = ("active", "in_stock", "available")
STOCK_COUNTS = ("stock", "stock_quantity", "inventory")


def unavailable_items(items: pd.DataFrame) -> np.ndarray:
    """Items the catalogue says cannot be sold: a flag ``active``/``in_stock``/``available`` that
    is false, or a count ``stock``/``stock_quantity``/``inventory`` at or below 0. Missing values
    say nothing (the item stays)."""
    out = np.zeros(len(items), dtype=bool)
    for column in STOCK_FLAGS:
        if column in items.columns:
            flag = items[column].map(_false).to_numpy(dtype=bool)
            out |= flag
    for column in STOCK_COUNTS:
        if column in items.columns:
            count = pd.to_numeric(items[column], errors="coerce").to_numpy(dtype=float)
            out |= np.nan_to_num(count, nan=1.0) <= 0
    return out


def _false(value: Any) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return False
    if isinstance(value, str):
        return value.strip().lower() in {"false", "0", "no", "n", "f"}
    return not bool(value)


NEGATIVE_EVENTS = ("not_interested",)
"""Event types that remove an item from a customer's lists."""
LOW_RATING = 2.0
"""A customer's latest rating of an item at or below this removes the item from their lists."""


def negative_pairs(events: pd.DataFrame, n_customers: int, n_items: int) -> sp.csr_matrix:
    """customers x items indicator of negative feedback: a ``not_interested`` event, or a
    latest rating of ``LOW_RATING`` or less. ``events`` has integer customer/item codes."""
    kind = events["event_type"].astype(str).to_numpy()
    negative = np.isin(kind, NEGATIVE_EVENTS)
    rating = kind == "rating"
    if rating.any():
        rated = events.loc[rating, ["customer", "item"]]
        latest = ~rated.duplicated(keep="last").to_numpy()
        low = events.loc[rating, "value"].fillna(np.inf).to_numpy() <= LOW_RATING
        negative[np.flatnonzero(rating)[latest & low]] = True
    return sp.csr_matrix(
        (
            np.ones(int(negative.sum()), dtype=np.float32),
            (events["customer"].to_numpy()[negative], events["item"].to_numpy()[negative]),
        ),
        shape=(n_customers, n_items),
    )


@dataclass(frozen=True)
class RecentEvents:
    """Events newer than a fitted dataset, as two matrices with one row per requested customer:
    ``positive`` (items bought, carted, viewed or rated above ``LOW_RATING``) and ``negative``
    (negative feedback, see :func:`negative_pairs`)."""

    positive: sp.csr_matrix
    negative: sp.csr_matrix

    @classmethod
    def of(cls, dataset: Dataset, ids: np.ndarray, recent: pd.DataFrame) -> RecentEvents:
        """Rows for ``ids`` (in order) from ``recent``: columns customer_id, item_id, event_type
        and optionally value (a rating). Unknown items are ignored."""
        missing = {"customer_id", "item_id", "event_type"} - set(recent.columns)
        if missing:
            raise TailorError(f"recent events: missing column(s) {', '.join(sorted(missing))}")
        position = pd.Series(np.arange(len(ids)), index=pd.Index(ids.astype(str)))
        position = position[~position.index.duplicated()]
        row = position.reindex(recent["customer_id"].astype(str)).to_numpy()
        col = dataset.item_index(recent["item_id"])
        keep = ~np.isnan(row) & (col >= 0)
        frame = pd.DataFrame(
            {
                "customer": row[keep].astype(np.int64),
                "item": col[keep],
                "event_type": recent["event_type"].astype(str).to_numpy()[keep],
                "value": (
                    recent["value"].to_numpy(dtype=float)[keep]
                    if "value" in recent
                    else np.full(int(keep.sum()), np.nan)
                ),
            }
        )
        negative = negative_pairs(frame, len(ids), dataset.n_items)
        weight = frame["event_type"].map(dataset.weights).fillna(0.0).to_numpy()
        positive_rows = (weight > 0) & ~np.isin(frame["event_type"], NEGATIVE_EVENTS)
        positive = sp.csr_matrix(
            (
                np.ones(int(positive_rows.sum()), dtype=np.float32),
                (frame["customer"][positive_rows], frame["item"][positive_rows]),
            ),
            shape=(len(ids), dataset.n_items),
        )
        positive = ((positive > 0).astype(np.float32) - negative.multiply(positive > 0)).tocsr()
        positive.eliminate_zeros()
        return cls(positive=positive, negative=negative)

    def slice(self, start: int, stop: int) -> RecentEvents:
        return RecentEvents(self.positive[start:stop], self.negative[start:stop])


def _mask_rows(scores: np.ndarray, marks: sp.csr_matrix) -> None:
    """-inf where ``marks`` (one row per score row) is set."""
    coo = marks.tocoo()
    scores[coo.row, coo.col] = -np.inf


def _mask_history(scores: np.ndarray, history: sp.csr_matrix, rows: np.ndarray) -> None:
    known = np.flatnonzero(rows >= 0)
    sub = history[rows[known]].tocoo()
    scores[known[sub.row], sub.col] = -np.inf


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k highest scores per row, best first (ties: lower column first).

    numpy's argpartition costs ~20 ns per score, which over a 90 k-item catalog dominates
    recommending. So, for wide rows, columns are first grouped in blocks of ``BLOCK``: the k
    best items lie in the k blocks with the highest maxima (any block outside them has k blocks
    each holding a higher score), and only those k x BLOCK candidates are partitioned.
    """
    n, m = scores.shape
    if m > 4 * k * BLOCK:
        full = m - m % BLOCK
        maxima = scores[:, :full].reshape(n, full // BLOCK, BLOCK).max(axis=2)
        if full < m:
            maxima = np.hstack([maxima, scores[:, full:].max(axis=1, keepdims=True)])
        blocks = np.argpartition(-maxima, k - 1, axis=1)[:, :k]
        columns = (blocks[:, :, None] * BLOCK + np.arange(BLOCK)).reshape(n, -1)
        inside = columns < m
        columns = np.where(inside, columns, 0)
        candidates = np.where(inside, np.take_along_axis(scores, columns, axis=1), -np.inf)
        best = _top_k(candidates, k)
        chosen = np.take_along_axis(columns, best, axis=1)
        # Re-order by (score, column): candidates came in block order, not column order.
        chosen_scores = np.take_along_axis(scores, chosen, axis=1)
        order = np.lexsort((chosen, -chosen_scores), axis=1)
        return np.take_along_axis(chosen, order, axis=1)
    if k >= m:
        part = np.tile(np.arange(m), (n, 1))
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _cold_start_reason(dataset: Dataset, popularity: np.ndarray, items: np.ndarray) -> np.ndarray:
    reasons = np.full(items.shape, "", dtype=object)
    valid = items >= 0
    buyers = np.floor(popularity[items[valid]]).astype(int)
    reasons[valid] = [
        f"new here: popular now, bought by {customers(b)} in the last 4 weeks" for b in buyers
    ]
    return reasons


def customers(n: int) -> str:
    return "1 customer" if n == 1 else f"{n} customers"


def _frame(
    ids: np.ndarray,
    items: np.ndarray,
    scores: np.ndarray,
    reasons: np.ndarray,
    item_ids: np.ndarray,
) -> pd.DataFrame:
    n, k = items.shape
    valid = items >= 0
    frame = pd.DataFrame(
        {
            "customer_id": np.repeat(ids, k)[valid.ravel()],
            "rank": np.tile(np.arange(1, k + 1), n)[valid.ravel()],
            "item_id": item_ids[items[valid]],
            "score": scores[valid].astype(np.float64),
            "reason": reasons[valid],
        }
    )
    return frame[RECOMMEND_COLUMNS]  # unfilled slots (-1) only ever trail, so ranks stay 1..n


def describe_items(dataset: Dataset, columns: Sequence[int]) -> list[str]:
    """Short human names of items: title, else brand + category, else the id."""
    items = dataset.items
    names = []
    for c in columns:
        row = items.iloc[c]
        title = row.get("title")
        if isinstance(title, str) and title:
            names.append(title)
            continue
        parts = [row.get(a) for a in ("brand", "subcategory", "category") if a in items.columns]
        parts = [p for p in parts if isinstance(p, str) and p]
        names.append(" ".join(parts[:2]).title() if parts else f"item {dataset.item_ids[c]}")
    return names
