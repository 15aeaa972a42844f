"""Personal repurchase: what a customer buys again, and when it is due.

In grocery a customer's own repeat purchases dominate what they buy next, so these are strong
baselines and the backbone of the repeat-aware list:

* :class:`PersonalFrequency` counts the days a customer bought each item (optionally decayed
  with a half-life, so that last month's habit outweighs last year's);
* :class:`Repurchase` adds the item's purchase cycle: an item bought about every 12 days and
  last bought 13 days ago is due; one bought every 60 days, last 5 days ago, is not.

Items a customer never bought are ranked after their own, by recent popularity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.dataset import Dataset
from tailor.recommend.base import Recommender

# Weight of recent popularity among items a customer never bought: far below one purchase.
POPULARITY_TIE_BREAK = 1e-3
DAY = np.timedelta64(1, "D")


def purchase_days(dataset: Dataset) -> pd.DataFrame:
    """One row per (customer, item, day) the customer bought the item, with the day number.

    Only purchases count (a view or a cart is no purchase), and only of items the customer kept:
    an item bought and returned, whose purchases and returns weigh 0 or less in all, is no
    preference (as in the Dataset's interactions).
    """
    ev = dataset.events
    kind = ev["event_type"].astype(str).to_numpy()
    weight = ev["weight"].to_numpy()
    traded = np.where((kind == "purchase") | (kind == "return"), weight, 0.0)
    kept = pd.Series(traded).groupby([ev["customer"].to_numpy(), ev["item"].to_numpy()])
    bought = (kind == "purchase") & (weight > 0) & (kept.transform("sum").to_numpy() > 0)
    bought = ev.loc[bought, ["customer", "item", "timestamp"]]
    day = (bought["timestamp"].to_numpy() - np.datetime64("1970-01-01")) // DAY
    frame = pd.DataFrame(
        {"customer": bought["customer"].to_numpy(), "item": bought["item"].to_numpy(), "day": day}
    )
    return frame.drop_duplicates()


class PersonalFrequency(Recommender):
    """A customer's own items, by the number of days they bought each (optionally decayed).

    Parameters
    ----------
    half_life_days : float or None
        With a half-life, a purchase ``d`` days before the cut counts ``0.5 ** (d / half_life)``;
        None counts every purchase day as 1.
    """

    name = "personal_frequency"
    customer_state = ("counts_", "weights_", "last_day_")

    def __init__(self, half_life_days: float | None = None) -> None:
        self.half_life_days = half_life_days

    def _fit(self, dataset: Dataset) -> None:
        days = purchase_days(dataset)
        today = (np.datetime64(self.now_) - np.datetime64("1970-01-01")) / DAY
        age = today - days["day"].to_numpy()
        if self.half_life_days is None:
            weight = np.ones(len(days))
        else:
            weight = 0.5 ** (age / self.half_life_days)
        shape = (dataset.n_customers, dataset.n_items)
        rows, cols = days["customer"].to_numpy(), days["item"].to_numpy()
        self.counts_ = sp.csr_matrix((np.ones(len(days)), (rows, cols)), shape=shape)
        self.weights_ = sp.csr_matrix((weight, (rows, cols)), shape=shape)
        last = days.groupby(["customer", "item"])["day"].max()
        self.last_day_ = sp.csr_matrix(
            (
                last.to_numpy() + 1.0,
                (last.index.get_level_values(0), last.index.get_level_values(1)),
            ),
            shape=shape,
        )  # day + 1 so that day 0 is stored
        self.today_ = today

    def _forget(self, dataset: Dataset, keep: np.ndarray) -> None:
        pass  # every learned row is one customer's own

    def _score(self, rows: np.ndarray) -> np.ndarray:
        scores = self.weights_[rows].toarray().astype(np.float32)
        tie = self._popularity_tie()
        return scores + POPULARITY_TIE_BREAK * tie

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        counts = _lookup(self.counts_, rows, items)
        last = _lookup(self.last_day_, rows, items) - 1
        reasons = np.full(items.shape, "", dtype=object)
        for pos in zip(*np.nonzero(items >= 0), strict=True):
            n = int(counts[pos])
            if n == 0:
                reasons[pos] = "popular now with other customers"
                continue
            times = "once" if n == 1 else f"{n} times"
            when = _days_ago(self.today_ - last[pos])
            reasons[pos] = f"you bought this {times}; last bought {when}"
        return reasons


class Repurchase(PersonalFrequency):
    """Decayed personal frequency scaled by how due each item is.

    For an item bought on ``n >= 2`` days, its cycle is ``(last - first) / (n - 1)`` days. With
    ``t`` days since the last purchase, the chance it is bought again within ``horizon_days`` is
    taken as ``1 - exp(-horizon / cycle)``, and a habit seems dropped when ``t`` exceeds
    ``patience`` cycles: beyond that the score decays by ``exp(-(t / cycle - patience))``.
    Items bought on one day only keep their decayed frequency times ``single_purchase_factor``.

    Parameters
    ----------
    half_life_days : float
        Half-life of the frequency's decay.
    horizon_days : float
        The period the list is for (the next shopping weeks).
    patience : float
        Cycles without a purchase before the habit counts as dropped.
    single_purchase_factor : float
        Weight of items bought once, relative to a due repeat item.
    """

    name = "repurchase"
    customer_state = (*PersonalFrequency.customer_state, "due_", "cycle_")

    def __init__(
        self,
        half_life_days: float = 90.0,
        horizon_days: float = 28.0,
        patience: float = 3.0,
        single_purchase_factor: float = 0.5,
    ) -> None:
        super().__init__(half_life_days=half_life_days)
        self.horizon_days = horizon_days
        self.patience = patience
        self.single_purchase_factor = single_purchase_factor

    def _fit(self, dataset: Dataset) -> None:
        super()._fit(dataset)
        days = purchase_days(dataset)
        span = days.groupby(["customer", "item"])["day"].agg(["min", "max", "size"])
        n = span["size"].to_numpy(np.float64)
        cycle = np.where(n > 1, (span["max"] - span["min"]).to_numpy() / np.maximum(n - 1, 1), 0)
        since = self.today_ - span["max"].to_numpy()
        due = np.where(
            n > 1,
            (1 - np.exp(-self.horizon_days / np.maximum(cycle, 1.0)))
            * np.exp(-np.maximum(since / np.maximum(cycle, 1.0) - self.patience, 0.0)),
            self.single_purchase_factor,
        )
        index = (span.index.get_level_values(0), span.index.get_level_values(1))
        shape = (dataset.n_customers, dataset.n_items)
        self.due_ = sp.csr_matrix((due, index), shape=shape)
        self.cycle_ = sp.csr_matrix((np.where(n > 1, cycle, 0.0) + 1e-9, index), shape=shape)
        self.weights_ = self.weights_.multiply(self.due_).tocsr()

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        reasons = super()._reasons(rows, items, scores)
        cycle = _lookup(self.cycle_, rows, items)
        last = _lookup(self.last_day_, rows, items) - 1
        for pos in zip(*np.nonzero((items >= 0) & (cycle >= 1)), strict=True):
            ago = int(round(self.today_ - last[pos]))
            every = int(round(cycle[pos]))
            if ago > self.patience * every:
                state = "overdue for a while: perhaps a habit you dropped"
            elif ago >= every:
                state = "due now"
            else:
                state = f"due in about {_days(every - ago)}"
            reasons[pos] = (
                f"you buy this about every {_days(every)}; last bought {_days_ago(ago)} ({state})"
            )
        return reasons


def _days(n: float) -> str:
    n = int(round(n))
    return "1 day" if n == 1 else f"{n} days"


def _days_ago(n: float) -> str:
    n = int(round(n))
    return "today" if n <= 0 else "yesterday" if n == 1 else f"{n} days ago"


def _lookup(matrix: sp.csr_matrix, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``matrix[rows[i], items[i, j]]`` as a dense (n, k) array (0 where absent or item -1)."""
    out = np.zeros(items.shape, dtype=np.float64)
    valid = items >= 0
    r = np.repeat(rows, items.shape[1]).reshape(items.shape)
    out[valid] = np.asarray(matrix[r[valid], items[valid]]).ravel()
    return out
